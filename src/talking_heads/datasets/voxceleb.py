"""VoxCeleb1 and VoxCeleb2 (Nagrani et al. 2017; Chung et al. 2018)."""

from __future__ import annotations

from typing import ClassVar

from talking_heads.datasets.base import Dataset


class VoxCeleb1(Dataset):
    name = "voxceleb1"
    survey_name = "VoxCeleb1"
    description = "VoxCeleb1: 1,251 celebrities, 153,516 utterances from YouTube interviews"
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html"
    licence = "CC BY 4.0 (metadata); videos remain with their YouTube owners"
    subsets: ClassVar[dict[str, str]] = {}
    default_subsets: ClassVar[tuple[str, ...]] = ()


class VoxCeleb2(Dataset):
    name = "voxceleb2"
    survey_name = "VoxCeleb2"
    description = "VoxCeleb2: 6,112 celebrities, 1,128,246 utterances from YouTube interviews"
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html"
    licence = "CC BY 4.0 (metadata); videos remain with their YouTube owners"
    subsets: ClassVar[dict[str, str]] = {}
    default_subsets: ClassVar[tuple[str, ...]] = ()
