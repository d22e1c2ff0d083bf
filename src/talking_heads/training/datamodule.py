"""Frame-pair data for motion-transfer training, read from preprocessed shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from talking_heads.manifest import read_manifest


def load_clip_table(shards_dir: Path | str, split: str | None = None) -> pd.DataFrame:
    """All ``ok`` video clips of the shard directories below ``shards_dir`` (absolute paths)."""
    shards_dir = Path(shards_dir)
    rows = []
    for manifest_path in sorted(shards_dir.glob("*/manifest.parquet")):
        df = read_manifest(manifest_path)
        df = df[(df["status"] == "ok") & (df["kind"] == "video")].copy()
        df["abspath"] = [str(manifest_path.parent / p) for p in df["path"]]
        rows.append(df)
    if not rows:
        raise FileNotFoundError(f"no shard manifests under {shards_dir}")
    table = pd.concat(rows, ignore_index=True)
    if split is not None and split in set(table["split"]):
        table = table[table["split"] == split]
    if table.empty:
        raise ValueError(f"no usable clips under {shards_dir} (split={split})")
    return table.reset_index(drop=True)


class FramePairDataset(Dataset):
    """Two random frames of one clip: ``source`` and ``driving`` (FOMM's FramesDataset).

    As upstream with ``id_sampling``: each index picks a speaker, then a random clip of that
    speaker, then two distinct random frames; the epoch is repeated ``num_repeats`` times
    (upstream's DatasetRepeater). Augmentation follows the vox-256 config: random horizontal
    flip, time flip (swap of the pair) and colour jitter 0.1. Frames are resized to
    ``resolution`` when the clips differ.
    """

    def __init__(
        self,
        clips: pd.DataFrame,
        resolution: int,
        *,
        num_repeats: int = 1,
        augment: bool = True,
        id_sampling: bool = True,
        seed: int | None = None,
    ) -> None:
        self.clips = clips
        self.resolution = resolution
        self.num_repeats = num_repeats
        self.augment = augment
        self.groups = (
            [list(g.index) for _, g in clips.groupby("speaker", sort=True)]
            if id_sampling
            else [[i] for i in clips.index]
        )
        self.seed = seed
        self._readers: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.groups) * self.num_repeats

    def _reader(self, path: str):
        import decord

        if path not in self._readers:
            self._readers[path] = decord.VideoReader(path, num_threads=1)
        return self._readers[path]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(None if self.seed is None else self.seed + index)
        group = self.groups[index % len(self.groups)]
        row = self.clips.loc[group[int(rng.integers(len(group)))]]
        reader = self._reader(row["abspath"])
        picks = rng.choice(len(reader), size=2, replace=len(reader) < 2)
        frames = torch.from_numpy(reader.get_batch(sorted(picks.tolist())).asnumpy())
        pair = frames.permute(0, 3, 1, 2).float().div(255.0)
        if pair.shape[-1] != self.resolution or pair.shape[-2] != self.resolution:
            pair = torch.nn.functional.interpolate(
                pair,
                size=(self.resolution,) * 2,
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        if self.augment:
            pair = self._augment(pair, rng)
        return {"source": pair[0], "driving": pair[1]}

    @staticmethod
    def _augment(pair: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as F

        if rng.random() < 0.5:
            pair = pair.flip(-1)
        if rng.random() < 0.5:
            pair = pair.flip(0)
        brightness, contrast, saturation = (1 + rng.uniform(-0.1, 0.1) for _ in range(3))
        hue = rng.uniform(-0.1, 0.1)
        pair = F.adjust_brightness(pair, brightness)
        pair = F.adjust_contrast(pair, contrast)
        pair = F.adjust_saturation(pair, saturation)
        pair = F.adjust_hue(pair, hue)
        return pair.clamp(0, 1)


class ShardDataModule(pl.LightningDataModule):
    """Loaders over ``self.train_set`` / ``self.val_set`` (built by a subclass's ``setup``)
    with the ``batch_size`` and ``num_workers`` hyperparameters: training shuffled with the
    last partial batch dropped, validation in order."""

    train_set: Dataset
    val_set: Dataset

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.hparams.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set, batch_size=self.hparams.batch_size, num_workers=self.hparams.num_workers
        )


class FramePairDataModule(ShardDataModule):
    """Lightning data module over preprocessed shards (``<shards_dir>/*/manifest.parquet``)."""

    def __init__(
        self,
        shards_dir: str,
        resolution: int = 256,
        batch_size: int = 40,
        num_repeats: int = 75,
        num_workers: int = 4,
        val_pairs: int = 16,
        train_split: str | None = "train",
        val_split: str | None = "test",
        augment: bool = True,
        id_sampling: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        train_clips = load_clip_table(hp.shards_dir, hp.train_split)
        val_clips = load_clip_table(hp.shards_dir, hp.val_split)
        self.train_set = FramePairDataset(
            train_clips,
            hp.resolution,
            num_repeats=hp.num_repeats,
            augment=hp.augment,
            id_sampling=hp.id_sampling,
        )
        # validation pairs are fixed (seeded) and not augmented
        self.val_set = FramePairDataset(
            val_clips,
            hp.resolution,
            num_repeats=max(1, hp.val_pairs // max(1, len(val_clips))),
            augment=False,
            id_sampling=False,
            seed=0,
        )
