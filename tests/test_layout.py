"""The package's shape: the shared core imports no family, and the data and analysis steps
import no torch (their conda environments, envs/data.yaml and envs/analysis.yaml, have none)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "workflow" / "ftdag"
FAMILIES = sorted(
    p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name not in ("core", "__pycache__")
)


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_the_core_imports_no_family():
    assert "exp3" in FAMILIES
    for path in (PACKAGE / "core").glob("*.py"):
        for module in imported_modules(path):
            assert not any(module.startswith(f"ftdag.{f}") for f in FAMILIES), (path.name, module)


def test_data_and_analysis_steps_do_not_import_torch():
    code = (
        "import sys; import ftdag.exp3.steps, ftdag.exp3.metrics, ftdag.exp3.plots, "
        "ftdag.campaign, ftdag.core.cost, ftdag.core.provenance; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PACKAGE.parent)},
    )
    assert result.stdout.strip() == "False"
