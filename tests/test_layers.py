"""The package's layering: import-linter's contracts (``[tool.importlinter]`` in pyproject.toml)
and an AST scan that covers every registered method without a list to keep up to date."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from talking_heads.models import METHODS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "talking_heads"
#: packages that must never import the training entry point
NO_TRAINING = ("models", "metrics", "inference", "report", "nets", "preprocess", "datasets")


def lint_imports(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts, on ``pythonpath``'s copy when given."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    script = Path(sys.executable).with_name("lint-imports")  # import-linter's entry point
    command = [str(script), "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every absolute import in ``path`` (lazy imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def method_packages() -> dict[str, str]:
    """Registered method -> the package under ``talking_heads.models`` its generator lives in."""
    packages = {}
    for name in METHODS.names():
        parts = METHODS.get(name).generator.split(".")
        packages[name] = ".".join(parts[:3])
    return packages


def cross_method_imports(package_root: Path, packages: set[str]) -> list[str]:
    """``file:line imports other.package`` for each import of one method package by another."""
    problems = []
    for package in sorted(packages):
        folder = package_root.joinpath(*package.split("."))
        for path in sorted(folder.rglob("*.py")):
            for line, module in imported_modules(path):
                for other in packages - {package}:
                    if module == other or module.startswith(other + "."):
                        problems.append(f"{path.relative_to(package_root)}:{line} imports {module}")
    return problems


def test_the_import_contracts_hold() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_independence_contract_lists_every_registered_method() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    independence = next(c for c in contracts if c["type"] == "independence")
    assert set(independence["modules"]) == set(method_packages().values()), (
        "add the new method's package to the independence contract in pyproject.toml"
    )


def test_no_method_package_imports_another() -> None:
    assert cross_method_imports(PACKAGE.parent, set(method_packages().values())) == []


@pytest.mark.parametrize("layer", NO_TRAINING)
def test_no_layer_below_training_imports_it(layer: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for line, module in imported_modules(path)
        if module == "talking_heads.training" or module.startswith("talking_heads.training.")
    ]
    assert offenders == []


def test_a_cross_method_import_breaks_both_checks(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "talking_heads", ignore=shutil.ignore_patterns("__pycache__"))
    offender = copy / "talking_heads" / "models" / "dagan" / "borrowed.py"
    offender.write_text("from talking_heads.models.fomm.networks import build_networks\n")
    problems = cross_method_imports(copy, set(method_packages().values()))
    assert problems == [
        "talking_heads/models/dagan/borrowed.py:1 imports talking_heads.models.fomm.networks"
    ]
    (copy / "talking_heads" / "report" / "leak.py").write_text("import talking_heads.models\n")
    result = lint_imports(pythonpath=copy)
    assert result.returncode != 0
    assert "no method package imports another" in result.stdout
    assert "talking_heads.models.dagan.borrowed -> talking_heads.models.fomm.networks" in (
        result.stdout
    )
    assert "talking_heads.report is not allowed to import talking_heads.models" in result.stdout
