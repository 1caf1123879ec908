"""Project hygiene: packaging consistency, committed notebooks, the CLI."""

import json
import re
import subprocess
import sys
import tomllib

import pytest

from fer_utils.paths import NOTEBOOKS_DIR, PROJECT_ROOT


def requirement_names(requirements):
    names = {}
    for requirement in requirements:
        spec = requirement.split(";")[0].strip()
        name = re.split(r"[<>=!\[ ]", spec, maxsplit=1)[0].lower()
        names[name] = spec
    return names


def test_environment_yml_matches_pyproject():
    import yaml

    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    assert "python=3.11" in environment["dependencies"] and "pip" in environment["dependencies"]
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pip_section[-1] == "-e .[dev]", "the pip section ends by installing the project"
    wanted = requirement_names(pyproject["dependencies"] + pyproject["optional-dependencies"]["dev"])
    wanted.pop("tensorflow")  # the non-Linux-x86 marker variant; conda envs use tensorflow-cpu (or CUDA)
    listed = requirement_names(pip_section[:-1])
    assert listed == wanted


def committed_notebooks():
    listed = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    return [PROJECT_ROOT / name for name in listed] or sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("notebook", committed_notebooks(), ids=lambda p: p.name)
def test_notebooks_are_committed_clean_with_a_parameters_cell(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert all(not cell.get("outputs") and cell.get("execution_count") is None for cell in code), (
        f"{notebook.name} carries outputs: strip them before committing"
    )
    if notebook.parent == NOTEBOOKS_DIR:
        assert "parameters" in code[0]["metadata"].get("tags", []), (
            "the first code cell must be tagged parameters"
        )


def test_cli_lists_its_commands():
    result = subprocess.run([sys.executable, "-m", "fer_utils.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in ("train", "preprocess"):
        assert command in result.stdout


def test_cli_user_errors_are_one_line_messages(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_utils.cli",
            "train",
            "--cache",
            str(tmp_path),
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "not a face cache" in result.stderr and "Traceback" not in result.stderr
