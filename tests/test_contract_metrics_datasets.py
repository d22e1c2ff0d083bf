"""The metric and dataset registries' contract: every registration has all its pieces.

A metric needs a ``reference`` string naming the exact computation it reproduces and a test
marked ``@pytest.mark.parity("<name>")`` that compares it with that reference. A dataset
needs its description, homepage and licence, a module docstring, a row or section in the
README and a fixture test (``fixture_test``) that exists. Each missing piece is one message
saying what to add (:func:`metric_problems`, :func:`dataset_problems`).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from talking_heads.datasets import DATASETS
from talking_heads.datasets.base import Dataset
from talking_heads.metrics import METRICS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def parity_index(tests: Path = ROOT / "tests") -> dict[str, list[str]]:
    """Metric name -> the tests marked ``@pytest.mark.parity(...)`` with it (read by AST)."""
    index: dict[str, list[str]] = {}
    for path in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and ast.unparse(decorator.func) == "pytest.mark.parity"
                ):
                    for arg in decorator.args:
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                            index.setdefault(arg.value, []).append(f"{path.name}::{node.name}")
    return index


def metric_problems(name: str, metric: type, parity: dict[str, list[str]]) -> list[str]:
    """What the registration of metric ``name`` lacks (empty when complete)."""
    problems = []
    if getattr(metric, "name", None) != name:
        problems.append(f"{name}: set the class attribute name = {name!r}")
    if len(str(getattr(metric, "reference", "")).strip()) < 20:
        problems.append(
            f"{name}: give it a reference string naming the official code and the exact "
            "computation it reproduces"
        )
    if name not in parity:
        problems.append(
            f"{name}: mark the test comparing it with its reference implementation "
            f'@pytest.mark.parity("{name}")'
        )
    return problems


def dataset_problems(name: str, dataset: Dataset, readme: str = README) -> list[str]:
    """What the registration of dataset ``name`` lacks (empty when complete)."""
    problems = []
    for attribute in ("description", "homepage", "licence"):
        if not str(getattr(dataset, attribute, "")).strip():
            problems.append(f"{name}: fill the class attribute {attribute}")
    module = inspect.getmodule(type(dataset))
    if module is None or len((module.__doc__ or "").strip()) < 80:
        problems.append(
            f"{name}: document its source, layout, splits and known defects in its module docstring"
        )
    if f"`{name}`" not in readme:
        problems.append(f"{name}: describe it in the README (a row of the Datasets table)")
    fixture = getattr(dataset, "fixture_test", "")
    if not fixture:
        problems.append(f"{name}: set fixture_test to the test that runs it on a fixture")
    elif not (ROOT / fixture).is_file():
        problems.append(f"{name}: its fixture_test {fixture} does not exist")
    return problems


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_has_a_reference_and_a_parity_test(name: str) -> None:
    assert metric_problems(name, METRICS.get(name), parity_index()) == []


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_has_docs_and_a_fixture_test(name: str) -> None:
    assert dataset_problems(name, DATASETS.get(name)) == []


def test_parity_marks_name_only_registered_metrics() -> None:
    unknown = set(parity_index()) - set(METRICS.names())
    assert unknown == set()


def test_an_incomplete_metric_registration_says_what_to_add() -> None:
    class Sharpness:
        name = "sharpness"
        reference = ""

    problems = metric_problems("sharpness", Sharpness, parity_index())
    assert problems == [
        "sharpness: give it a reference string naming the official code and the exact "
        "computation it reproduces",
        "sharpness: mark the test comparing it with its reference implementation "
        '@pytest.mark.parity("sharpness")',
    ]


def test_an_incomplete_dataset_registration_says_what_to_add() -> None:
    class Corpus(Dataset):
        name = "corpus"
        survey_name = ""
        description = "a corpus"
        homepage = ""
        licence = "CC-BY"
        subsets = {"all": "everything"}  # noqa: RUF012
        default_subsets = ("all",)
        fixture_test = "tests/test_dataset_corpus.py"

    problems = dataset_problems("corpus", Corpus(), readme="no mention")
    assert problems == [
        "corpus: fill the class attribute homepage",
        "corpus: describe it in the README (a row of the Datasets table)",
        "corpus: its fixture_test tests/test_dataset_corpus.py does not exist",
    ]
