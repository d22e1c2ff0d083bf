"""Single frames with a reference frame and their audio window for LipGAN training (upstream
``train.py``'s ``datagen``), read from preprocessed ``wav2lip``-recipe shards (96² crops at
25 fps, the clip's 16 kHz wav under ``audio/``).

Each item: a random clip with at least 12 frames, a random target frame, a reference frame
of the same clip at least 6 frames away (``choose_ip_frame``), and the target's audio window
centred on it (:mod:`talking_heads.models.lipgan.audio`: 80×27 Wav2Lip mel, from the shard's
``mel`` features, or 12×35 MATLAB-style MFCC computed from the wav). Frames stay BGR in
[0, 1], as upstream's ``cv2.imread``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from talking_heads.models.lipgan.audio import FRONT_ENDS, features, frame_windows
from talking_heads.preprocess.recipes.shard import load_features
from talking_heads.training.datamodule import ShardDataModule, load_clip_table

MIN_FRAMES = 12
MIN_GAP = 6


def clip_features(row, front_end: str) -> np.ndarray | None:
    """A clip's audio features for ``front_end`` (``None`` without audio)."""
    shard = Path(row.abspath).parent.parent
    if front_end == "mel80x27":
        mel = load_features(shard, row.clip_id).get("mel")
        if mel is not None:
            return mel
    audio_path = getattr(row, "audio_path", None)
    if not audio_path or not (shard / audio_path).is_file():
        return None
    from talking_heads.preprocess.audio import read_wav

    samples, rate = read_wav(shard / audio_path)
    return features(samples, rate, front_end)


class LipGANFrameDataset(Dataset):
    """Random (target, reference, audio window) triples of the clips in ``clips``."""

    def __init__(
        self,
        clips,
        *,
        audio: str = "mel80x27",
        num_repeats: int = 1,
        seed: int | None = None,
        fps: float = 25.0,
    ) -> None:
        if audio not in FRONT_ENDS:
            raise ValueError(
                f"unknown LipGAN audio input {audio!r}; choose from {list(FRONT_ENDS)}"
            )
        self.audio, self.fps, self.seed, self.num_repeats = audio, fps, seed, num_repeats
        self.items = []
        for row in clips.itertuples():
            frames = int(row.num_frames)
            if frames < MIN_FRAMES:
                continue
            spectrum = clip_features(row, audio)
            if spectrum is None or spectrum.shape[1] == 0 or not np.isfinite(spectrum).all():
                continue
            self.items.append((row.abspath, frame_windows(spectrum, frames, fps, audio)))
        if not self.items:
            raise ValueError(f"no clip has {MIN_FRAMES} frames with audio for LipGAN")
        self._frames: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items) * self.num_repeats

    def _clip(self, path: str) -> np.ndarray:
        """All frames of a clip, ``(T, H, W, 3)`` uint8 BGR (decoded once)."""
        if path not in self._frames:
            from talking_heads.utils.media import read_video

            frames, _ = read_video(path)
            self._frames[path] = np.ascontiguousarray(frames[..., ::-1])
        return self._frames[path]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(None if self.seed is None else self.seed + index)
        path, windows = self.items[index % len(self.items)]
        frames = self._clip(path)
        count = min(len(frames), len(windows))
        target = int(rng.integers(0, count))
        choices = [f for f in range(count) if abs(f - target) >= MIN_GAP]
        reference = int(rng.choice(choices))

        def image(i: int) -> torch.Tensor:
            return torch.from_numpy(frames[i].copy()).permute(2, 0, 1).float() / 255.0

        return {
            "face": image(target),
            "reference": image(reference),
            "audio": torch.from_numpy(windows[target].copy())[None],
        }


class LipGANFrameDataModule(ShardDataModule):
    """Lightning data over ``wav2lip``-recipe shards (``<shards_dir>/*/manifest.parquet``)."""

    def __init__(
        self,
        shards_dir: str,
        audio: str = "mel80x27",
        batch_size: int = 96,
        num_repeats: int = 1,
        num_workers: int = 4,
        val_items: int = 16,
        train_split: str | None = "train",
        val_split: str | None = "test",
        fps: float = 25.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        train = load_clip_table(hp.shards_dir, hp.train_split)
        val = load_clip_table(hp.shards_dir, hp.val_split)
        self.train_set = LipGANFrameDataset(
            train, audio=hp.audio, num_repeats=hp.num_repeats, fps=hp.fps
        )
        val_set = LipGANFrameDataset(val, audio=hp.audio, seed=0, fps=hp.fps)
        val_set.num_repeats = max(1, hp.val_items // len(val_set.items))
        self.val_set = val_set
