"""CREMA-D (Cao et al., IEEE TAC 2014): 91 actors, 12 sentences, 6 emotions."""

from __future__ import annotations

from typing import ClassVar

from talking_heads.datasets.base import Dataset


class CremaD(Dataset):
    name = "crema-d"
    survey_name = "CREMA-D"
    description = "CREMA-D: 7,442 clips of 91 actors, 12 sentences, 6 emotions, 4 levels"
    homepage = "https://github.com/CheyneyComputerScience/CREMA-D"
    licence = "ODbL 1.0 (database), DbCL 1.0 (contents)"
    subsets: ClassVar[dict[str, str]] = {}
    default_subsets: ClassVar[tuple[str, ...]] = ()
    environment = "Lab"
