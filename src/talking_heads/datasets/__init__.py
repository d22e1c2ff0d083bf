"""Datasets: one module each, registered in ``DATASETS`` under the name the config uses.

A dataset's ``prepare(root)`` fetches or builds it under ``root`` and returns the path of its
manifest (:mod:`talking_heads.manifest`), whose rows preprocessing recipes consume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from talking_heads.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its name, a one-line description and how to prepare it."""

    name: str
    description: str
    prepare: Callable[[Path], Path]


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _prepare_demo(root: Path) -> Path:
    from talking_heads.datasets.demo import build_demo_corpus

    return build_demo_corpus(root)


DATASETS.add(
    "demo",
    DatasetSpec(
        name="demo",
        description="embedded demo corpus from PyPI-shipped media: one talking-face clip with "
        "synthetic speech, one faceless clip, one portrait (no network)",
        prepare=_prepare_demo,
    ),
)
