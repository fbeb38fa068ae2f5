""".ci/run and scripts/setup.sh: CI runs exactly the README's test command, and torch stays pinned."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- test-command:start -->\n```bash\n(.*?)\n```\n<!-- test-command:end -->", readme, re.DOTALL
    )
    assert match is not None, "README.md has no test-command block"
    return match.group(1)


def test_ci_runs_readme_command():
    printed = subprocess.run(
        ["bash", ".ci/run", "--print-test-command"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert printed.stdout == readme_test_command() + "\n"


def test_readme_command_sets_up_first():
    # The command must work on a fresh clone, so it creates the environment before testing.
    command = readme_test_command()
    assert command.startswith("bash scripts/setup.sh && ")
    assert "pytest" in command


def test_ci_lints_before_testing():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    setup = script.index("\nbash scripts/setup.sh\n")
    lint = script.index("\n.venv/bin/ruff check .\n")
    test = script.index('\nbash -c "$test_command"\n')
    assert setup < lint < test


def test_scripts_are_valid_bash():
    for script in (ROOT / ".ci" / "run", ROOT / "scripts" / "setup.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
        assert "set -euo pipefail" in script.read_text(encoding="utf-8")


def test_setup_pins_torch():
    script = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert 'TORCH_REQUIREMENT="torch==2.13.0"' in script
    torch_installs = [
        line for line in script.splitlines() if "pip install" in line and "torch" in line.lower()
    ]
    assert torch_installs == ['    .venv/bin/python -m pip install "$TORCH_REQUIREMENT"']
    # torch is installed only when .venv cannot import one.
    assert script.index('-c "import torch"') < script.index('pip install "$TORCH_REQUIREMENT"')
