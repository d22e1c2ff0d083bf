"""5-frame windows with their mel spectrograms for lip-sync training, read from preprocessed
``wav2lip``-recipe shards (96² face crops at 25 fps, ``mel/<clip>`` in ``features.npz``).

Each item follows upstream's ``Dataset.__getitem__`` (``wav2lip_train.py`` and
``color_syncnet_train.py``): a random clip with more than 15 frames, a random 5-frame window
and a different random ("wrong") one of the same clip; the window's mel chunk (16 columns
from ``int(80·start/fps)``), each frame's mel chunk (``training`` alignment, one frame early)
and, for the expert, the window (label 1) or the wrong window (label 0), chosen with equal
probability, as 5 stacked lower halves. Frames stay BGR in [0, 1], as upstream's OpenCV
reads. Clips whose mel is too short for a window are left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from talking_heads.preprocess.audio import mel_windows
from talking_heads.preprocess.recipes.shard import load_features
from talking_heads.training.datamodule import ShardDataModule, load_clip_table

WINDOW = 5
MEL_STEP = 16
#: EmoGen's emotion classes, in its one-hot order
EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


def clip_emotion_code(row: object) -> str:
    """A clip's emotion code: its manifest ``emotion`` (``ANG`` or ``angry``), else the one a
    CREMA-D clip name holds (``1001_DFA_ANG_XX``), else empty."""
    label = str(getattr(row, "emotion", "") or "").upper()[:3]
    if label in EMOTIONS:
        return label
    from talking_heads.models.emogen.data import clip_emotion

    return clip_emotion(str(row.clip_id)) or ""


def resolve(dotted: str | None):
    """The object a dotted path names (``package.module.name``), or ``None``."""
    if not dotted:
        return None
    import importlib

    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def split_clips(table, split: str | None, scheme: str):
    """The clips of ``split``: the manifest's own split column (``scheme`` ``manifest``), or
    EmoGen's ``random_split`` 95/5 with seed 42 over all clips (``emogen``: splits ``train``
    and ``val``)."""
    if scheme == "manifest":
        return table
    if scheme != "emogen":
        raise ValueError(f"unknown split scheme {scheme!r}: manifest or emogen")
    from talking_heads.models.emogen.data import emogen_split

    sides = emogen_split(table["clip_id"])
    return table[[sides[c] == split for c in table["clip_id"]]].reset_index(drop=True)


class LipSyncWindowDataset(Dataset):
    """Random windows of the clips in ``clips`` (a :func:`load_clip_table` frame)."""

    def __init__(
        self,
        clips,
        *,
        num_repeats: int = 1,
        seed: int | None = None,
        fps: float = 25.0,
        augment=None,
    ) -> None:
        self.fps = fps
        self.seed = seed
        self.num_repeats = num_repeats
        self.augment = augment
        self.items = []
        for row in clips.itertuples():
            if int(row.num_frames) <= 3 * WINDOW:
                continue
            shard = Path(row.abspath).parent.parent
            mel = load_features(shard, row.clip_id).get("mel")
            if mel is None or mel.shape[1] < MEL_STEP:
                continue
            last = min(int(row.num_frames) - WINDOW, self._last_start(mel.shape[1]))
            if last < 1:
                continue
            emotion = clip_emotion_code(row)
            self.items.append((row.abspath, mel, last, emotion))
        if not self.items:
            raise ValueError("no clip has more than 15 frames with audio for a 16-column window")
        self._frames: dict[str, np.ndarray] = {}

    def _last_start(self, columns: int) -> int:
        """The last window start whose 16 mel columns lie inside the spectrogram."""
        start = 0
        while int(80.0 * (start + 1) / self.fps) + MEL_STEP <= columns:
            start += 1
        return start

    def __len__(self) -> int:
        return len(self.items) * self.num_repeats

    def _clip(self, path: str) -> np.ndarray:
        """All frames of a clip, ``(T, 96, 96, 3)`` uint8 BGR (decoded once)."""
        if path not in self._frames:
            from talking_heads.utils.media import read_video

            frames, _ = read_video(path)
            self._frames[path] = np.ascontiguousarray(frames[..., ::-1])
        return self._frames[path]

    def _window(self, frames: np.ndarray, start: int) -> torch.Tensor:
        """Frames ``start .. start+4`` as ``(3, 5, H, W)`` float in [0, 1]."""
        window = torch.from_numpy(frames[start : start + WINDOW].copy()).float() / 255.0
        return window.permute(3, 0, 1, 2)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(None if self.seed is None else self.seed + index)
        clip = index % len(self.items)
        last = self.items[clip][2]
        start = int(rng.integers(0, last + 1))
        wrong = int(rng.integers(0, last))
        wrong += wrong >= start
        label = float(rng.random() < 0.5)
        return self.item(clip, start, wrong, label, rng)

    def item(
        self,
        clip: int,
        start: int,
        wrong: int,
        label: float,
        rng: np.random.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """The sample of clip ``clip`` with the window at ``start``, the wrong one at
        ``wrong`` and the expert's input the window (``label`` 1) or the wrong one (0)."""
        path, mel, _, emotion = self.items[clip]
        frames = self._clip(path)
        begin = int(80.0 * start / self.fps)
        chunk = torch.from_numpy(mel[:, begin : begin + MEL_STEP].copy())[None]
        indiv = mel_windows(mel, start + WINDOW, self.fps, window=MEL_STEP, alignment="training")
        window, wrong_window = self._window(frames, start), self._window(frames, wrong)
        if self.augment is not None:
            rng = rng if rng is not None else np.random.default_rng()
            window, wrong_window = self.augment(window, wrong_window, rng)
        chosen = window if label else wrong_window
        expert = chosen[:, :, chosen.shape[2] // 2 :]
        item = {
            "window": window,
            "wrong": wrong_window,
            "mel": chunk,
            "indiv_mels": torch.from_numpy(indiv[start:])[:, None],
            "expert_faces": torch.cat(expert.unbind(1), dim=0),
            "expert_label": torch.tensor([label]),
        }
        code = emotion if emotion in EMOTIONS else "NEU"
        item["emotion"] = torch.nn.functional.one_hot(
            torch.tensor(EMOTIONS.index(code)), len(EMOTIONS)
        ).float()
        return item


class LipSyncWindowDataModule(ShardDataModule):
    """Lightning data over ``wav2lip``-recipe shards (``<shards_dir>/*/manifest.parquet``)."""

    def __init__(
        self,
        shards_dir: str,
        batch_size: int = 16,
        num_repeats: int = 1,
        num_workers: int = 4,
        val_windows: int = 16,
        train_split: str | None = "train",
        val_split: str | None = "test",
        fps: float = 25.0,
        resolution: int = 96,
        augment: str | None = None,
        split: str = "manifest",
    ) -> None:
        """``augment``: the dotted path of ``augment(window, wrong, rng)`` applied to training
        and validation windows alike (EmoGen validates on its augmented dataset too);
        ``split``: ``manifest`` (the splits of the manifest) or ``emogen`` (see
        :func:`split_clips`)."""
        super().__init__()
        self.save_hyperparameters()

    def _clips(self, split: str | None):
        hp = self.hparams
        if hp.split == "manifest":
            return load_clip_table(hp.shards_dir, split)
        return split_clips(load_clip_table(hp.shards_dir), split, hp.split)

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        augment = resolve(hp.augment)
        train, val = self._clips(hp.train_split), self._clips(hp.val_split)
        self.train_set = LipSyncWindowDataset(
            train, num_repeats=hp.num_repeats, fps=hp.fps, augment=augment
        )
        val_set = LipSyncWindowDataset(val, seed=0, fps=hp.fps, augment=augment)
        val_set.num_repeats = max(1, hp.val_windows // len(val_set.items))
        self.val_set = val_set
