"""Test infrastructure shared by the test files (not part of the package): ``recipes`` loads a recipe script
for an end-to-end run of its ``main()``; ``hub_server`` runs local Hub servers."""
