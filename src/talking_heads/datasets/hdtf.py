"""HDTF (Zhang et al., CVPR 2021): high-definition talking faces from YouTube."""

from __future__ import annotations

from typing import ClassVar

from talking_heads.datasets.base import Dataset


class HDTF(Dataset):
    name = "hdtf"
    survey_name = "HDTF"
    description = "HDTF: 362 YouTube videos, 15.8 h of 720p/1080p talking faces"
    homepage = "https://github.com/MRzzm/HDTF"
    licence = "CC BY 4.0 (annotations); videos remain with their YouTube owners"
    subsets: ClassVar[dict[str, str]] = {}
    default_subsets: ClassVar[tuple[str, ...]] = ()
