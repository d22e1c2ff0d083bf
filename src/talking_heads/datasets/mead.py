"""MEAD (Wang et al., ECCV 2020): emotional talking faces, 7 views, 8 emotions, 3 levels."""

from __future__ import annotations

from typing import ClassVar

from talking_heads.datasets.base import Dataset


class MEAD(Dataset):
    name = "mead"
    survey_name = "MEAD"
    description = "MEAD: 60 actors (48 public), 8 emotions x 3 levels, 7 camera views"
    homepage = "https://wywu.github.io/projects/MEAD/MEAD.html"
    licence = "MEAD Terms of Use: non-commercial research only"
    subsets: ClassVar[dict[str, str]] = {}
    default_subsets: ClassVar[tuple[str, ...]] = ()
    environment = "Lab"
