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
