"""The README's promises: its test command is what CI runs."""

import re

from conftest import REPO


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd.strip() in (REPO / ".ci" / "run").read_text()


def test_torch_is_pinned_to_the_cpu_release():
    assert '"torch==2.13.0"' in (REPO / "pyproject.toml").read_text()


def _top_level_imports(path):
    import ast

    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _requirement_names(requirements):
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].strip().lower().replace("_", "-") for r in requirements}


def test_every_import_of_the_package_recipes_tests_and_benchmarks_is_a_declared_dependency():
    """A module that only the development machine has must fail here, not on a new user's machine."""
    import sys
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = _requirement_names(project["dependencies"])
    test = core | _requirement_names(project["optional-dependencies"]["test"])
    distributions = packages_distributions()
    folders = {"hf_synpre": core, "recipes": core, "benchmarks": core, "dataset_scripts": core, "tests": test}
    files = {folder: sorted((REPO / folder).rglob("*.py")) for folder in folders}
    local = {"hf_synpre"} | {p.stem for paths in files.values() for p in paths}  # scripts importing each other
    local |= {p.parent.name for paths in files.values() for p in paths if p.name == "__init__.py"}  # tests/synpre_testkit
    missing = []
    for folder, declared in folders.items():
        for path in files[folder]:
            for name in _top_level_imports(path) - local - set(sys.stdlib_module_names):
                dists = {d.lower().replace("_", "-") for d in distributions.get(name, [])}
                if not dists & declared:
                    missing.append(f"{path.relative_to(REPO)}: {name} (from {sorted(dists) or 'nothing installed'})")
    assert not missing, "imports not declared in pyproject.toml:\n" + "\n".join(missing)
