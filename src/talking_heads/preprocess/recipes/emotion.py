"""The ``emotion`` recipe (MEAD, CREMA-D): ``wav2lip`` crops at 25 fps with the dataset's
emotion labels kept as manifest columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import RECIPES
from .wav2lip import Wav2LipParams, Wav2LipRecipe


@dataclass
class EmotionParams(Wav2LipParams):
    """The ``emotion`` recipe (MEAD, CREMA-D; EmoGen's preprocessing): ``wav2lip`` crops at 25
    fps (EmoGen's ``convertFPS.py`` re-encodes with ``-r 25``) plus the ``labels`` columns of
    the dataset manifest that exist (emotion, intensity level, sentence, camera view)."""

    recipe = "emotion"

    labels: tuple[str, ...] = ("emotion", "level", "sentence", "view")


@RECIPES.register("emotion")
class EmotionRecipe(Wav2LipRecipe):
    """``wav2lip`` crops at 25 fps with the dataset's emotion labels kept."""

    name = "emotion"
    params_type = EmotionParams

    def extra_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The label columns present in the input row."""
        labels: tuple[str, ...] = self.params.labels  # type: ignore[attr-defined]
        return {label: row.get(label) for label in labels if label in row}
