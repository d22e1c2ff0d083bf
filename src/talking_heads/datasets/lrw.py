"""LRW (Chung & Zisserman, ACCV 2016): 500 words, 538,766 clips from BBC broadcasts."""

from __future__ import annotations

from typing import ClassVar

from talking_heads.datasets.base import Dataset


class LRW(Dataset):
    name = "lrw"
    survey_name = "LRW"
    description = "LRW: 500 words x up to 1,000 speakers, 29-frame clips from BBC TV"
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrw1.html"
    licence = "BBC research licence (credentials required)"
    subsets: ClassVar[dict[str, str]] = {}
    default_subsets: ClassVar[tuple[str, ...]] = ()
    head_movement = "No"
