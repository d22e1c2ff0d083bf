"""EmoGen's data conventions on our manifests: the clip's emotion and the 95/5 split.

**Split.** ``train.py`` lists the preprocessed clip folders (``os.listdir``), takes
``train_size = int(0.95·n)`` and calls ``torch.utils.data.random_split(dataset, [train_size,
n − train_size], generator=torch.Generator().manual_seed(42))``, i.e. the first
``train_size`` entries of ``torch.randperm(n, generator)`` are the training clips.
:func:`emogen_split` draws the same permutation over our clips **sorted by name** (the
CREMA-D stem ``{actor}_{sentence}_{emotion}_{level}``, one per manifest ``clip_id``):
``os.listdir``'s order is the file system's and cannot be reproduced, so the indices match
upstream's draw while the clips they name are those of the sorted list. Clips of one actor
fall on both sides, as upstream's (not the speaker-disjoint split of
:mod:`talking_heads.datasets.cremad`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

import torch

from talking_heads.models.lipsync.generate import EMOTION_CODES

TRAIN_FRACTION = 0.95
SEED = 42


def clip_stem(clip_id: str) -> str:
    """``VideoFlash/1001_DFA_ANG_XX`` → ``1001_DFA_ANG_XX`` (upstream's folder name)."""
    return PurePosixPath(str(clip_id)).name.rsplit(".", 1)[0]


def clip_emotion(clip_id: str) -> str | None:
    """The emotion code of a CREMA-D clip name (its third ``_`` field), or ``None``."""
    parts = clip_stem(clip_id).split("_")
    return parts[2] if len(parts) >= 4 and parts[2] in EMOTION_CODES else None


def emogen_split(
    clip_ids: Iterable[str], train_fraction: float = TRAIN_FRACTION, seed: int = SEED
) -> dict[str, str]:
    """``{clip_id: "train" | "val"}``: ``random_split`` 95/5 with seed 42 over the clips
    sorted by stem (see the module docstring)."""
    names = sorted(set(clip_ids), key=lambda c: (clip_stem(c), c))
    train_size = int(train_fraction * len(names))
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    train = set(order[:train_size])
    return {name: "train" if i in train else "val" for i, name in enumerate(names)}
