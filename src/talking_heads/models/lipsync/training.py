"""Lightning training of the Wav2Lip lineage (``color_syncnet_train.py``,
``wav2lip_train.py``, ``hq_wav2lip_train.py``), shared by Wav2Lip and EmoGen.

Two stages in one run, as upstream's two scripts run one after the other: the lip-sync
expert first (``expert.steps`` steps, BCE of the cosine similarity of positive and negative
5-frame lower-half windows, Adam 1e-4), unless ``expert.checkpoint`` names a trained one
(upstream ``lipsync_expert.pth``, or one of our checkpoints holding an ``expert``), which is
then loaded frozen; then the generator with the frozen expert:
``loss = w·sync + d·adv + (1 − w − d)·L1``, the sync weight ``w`` starting at
``syncnet_wt_initial`` (0) and becoming ``syncnet_wt`` (0.01; 0.03 with the discriminator)
once the validation sync loss falls below ``sync_threshold`` (0.75), as upstream switches it
after an evaluation. With ``disc_wt`` > 0 (``hq_wav2lip_train``: 0.07) the visual-quality
discriminator is trained too (BCE, real vs the detached fakes) and both Adams use betas
(0.5, 0.999).

Deviation: one Lightning run holds both stages (upstream: two scripts); the expert's weights
travel in the checkpoint under ``expert.`` so that scoring and fine-tuning see the same one.
Batches (:class:`talking_heads.training.lipsync_data.LipSyncWindowDataModule`) are BGR in
[0, 1], as upstream's OpenCV frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.nn import functional as F

from talking_heads.config import plain
from talking_heads.models.lipsync.networks import (
    SyncNetColor,
    VisualQualityDisc,
    Wav2LipUNet,
    cosine_loss,
    lower_half_window,
)

#: Adam's betas of the GAN variant (upstream ``hq_wav2lip_train.py``)
GAN_BETAS = (0.5, 0.999)
DEFAULT_TRAIN = {
    "lr": 1.0e-4,
    "disc_lr": 1.0e-4,
    "syncnet_wt_initial": 0.0,
    "syncnet_wt": 0.01,
    "sync_threshold": 0.75,
    "disc_wt": 0.0,
    "betas": None,
}
#: where upstream links its released files (the hosting has moved several times)
EXPERT_URL = "https://github.com/Rudrabha/Wav2Lip#getting-the-weights"
DEFAULT_EXPERT = {"checkpoint": None, "steps": 0, "lr": 1.0e-4, "width": None}


def no_closure() -> None:
    """The closure ``strategy.optimizer_step`` needs (gradients are already computed)."""


def load_expert_state(path: Path | str) -> dict[str, torch.Tensor]:
    """The expert's weights from upstream's ``lipsync_expert.pth`` (``state_dict``, keys as
    ``SyncNet_color``'s, ``module.`` stripped) or from one of our checkpoints (``expert.``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"expert checkpoint not found: {path} (upstream's {path.name} is linked from "
            f"{EXPERT_URL}; put it at that path, or train the expert first with "
            "model.expert.checkpoint=null model.expert.steps=N)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    if any(k.startswith("expert.") for k in state):
        return {k[len("expert.") :]: v for k, v in state.items() if k.startswith("expert.")}
    return {k.replace("module.", "", 1): v for k, v in state.items()}


class LipSyncLightning(pl.LightningModule):
    """Expert stage, then the generator (+ optional discriminator): see the module docstring.

    ``width`` divides the channel counts (1: the published networks); ``emotions`` > 0 builds
    EmoGen's generator, whose extra losses a subclass adds in :meth:`extra_losses`.
    """

    #: 6-channel input: which rows of the target frames are masked (Wav2Lip: the lower half)
    mask_whole_face = False

    def __init__(
        self,
        width: int = 1,
        emotions: int = 0,
        expert: dict | None = None,
        train: dict | None = None,
        resolution: int = 96,
    ) -> None:
        super().__init__()
        expert = {**DEFAULT_EXPERT, **(plain(expert) or {})}
        train = {**DEFAULT_TRAIN, **(plain(train) or {})}
        self.save_hyperparameters(
            {
                "width": int(width),
                "emotions": int(emotions),
                "expert": expert,
                "train": train,
                "resolution": int(resolution),
            }
        )
        self.automatic_optimization = False
        self.generator = Wav2LipUNet(width, emotions)
        self.expert = SyncNetColor(expert["width"] or width)
        self.disc = VisualQualityDisc(width) if train["disc_wt"] > 0 else None
        if expert["checkpoint"]:
            self.expert.load_state_dict(load_expert_state(expert["checkpoint"]), strict=True)
        # kept in the checkpoint's top level (``on_save_checkpoint``), not in the state dict,
        # so that the state dict holds only the networks, as an imported file's does
        self.register_buffer(
            "syncnet_wt", torch.tensor(float(train["syncnet_wt_initial"])), persistent=False
        )
        self._val_sync: list[torch.Tensor] = []

    # -- stages ---------------------------------------------------------------------------
    @property
    def expert_steps(self) -> int:
        """Steps of the expert stage (0 when a trained expert was given)."""
        return 0 if self.hparams.expert["checkpoint"] else int(self.hparams.expert["steps"])

    @property
    def in_expert_stage(self) -> bool:
        return self.global_step < self.expert_steps

    def masked_input(self, window: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
        """The generator's 6-channel input: the target window masked, then the reference."""
        masked = window.clone()
        rows = 0 if self.mask_whole_face else window.size(3) // 2
        masked[:, :, :, rows:] = 0
        return torch.cat([masked, wrong], dim=1)

    def sync_loss(self, mel: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """The frozen expert's loss of generated windows against their audio (label 1)."""
        audio, face = self.expert(mel, lower_half_window(faces))
        return cosine_loss(audio, face, torch.ones(len(mel), 1, device=mel.device))

    def expert_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        audio, face = self.expert(batch["mel"], batch["expert_faces"])
        return cosine_loss(audio, face, batch["expert_label"])

    def generate(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        emotion = batch.get("emotion") if self.hparams.emotions else None
        return self.generator(
            batch["indiv_mels"], self.masked_input(batch["window"], batch["wrong"]), emotion
        )

    def extra_losses(
        self, batch: dict[str, torch.Tensor], generated: torch.Tensor
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """Further weighted generator losses ``{name: (weight, loss)}`` (EmoGen's)."""
        return {}

    def generator_losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Upstream's generator objective: total, its parts, and the generated windows."""
        generated = self.generate(batch)
        target = batch["window"]
        parts = {"l1": F.l1_loss(generated, target)}
        sync_wt = self.syncnet_wt
        parts["sync"] = self.sync_loss(batch["mel"], generated)
        total = sync_wt * parts["sync"]
        rest = 1.0 - sync_wt
        disc_wt = float(self.hparams.train["disc_wt"])
        if self.disc is not None:
            parts["adv"] = self.disc.perceptual_forward(generated)
            total = total + disc_wt * parts["adv"]
            rest = rest - disc_wt
        for name, (weight, loss) in self.extra_losses(batch, generated).items():
            parts[name] = loss
            total = total + weight * loss
            rest = rest - weight
        total = total + rest * parts["l1"]
        return total, parts, generated

    # -- Lightning hooks ------------------------------------------------------------------
    def on_train_start(self) -> None:
        self.expert.requires_grad_(self.in_expert_stage)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        opt_expert, opt_generator = self.optimizers()[:2]
        size = len(batch["mel"])
        if self.in_expert_stage:
            self.expert.train()
            loss = self.expert_loss(batch)
            opt_expert.zero_grad()
            self.manual_backward(loss)
            opt_expert.step()
            self.log("train/expert_loss", loss, prog_bar=True, batch_size=size)
            if not self.in_expert_stage:
                self.expert.requires_grad_(False)
            return loss.detach()
        # upstream never switches the frozen expert to eval mode: its BatchNorm layers use
        # the batch statistics while the generator trains
        self.expert.train()
        total, parts, generated = self.generator_losses(batch)
        opt_generator.zero_grad()
        self.manual_backward(total)
        opt_generator.step()
        if self.disc is not None:
            opt_disc = self.optimizers(use_pl_optimizer=False)[2]
            real = self.disc(batch["window"])
            fake = self.disc(generated.detach())
            parts["disc_real"] = F.binary_cross_entropy(real.float(), torch.ones_like(real))
            parts["disc_fake"] = F.binary_cross_entropy(fake.float(), torch.zeros_like(fake))
            opt_disc.zero_grad()
            self.manual_backward(parts["disc_real"] + parts["disc_fake"])
            self.trainer.strategy.optimizer_step(opt_disc, closure=no_closure)
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=size)
        self.log("train/loss", total, prog_bar=True, batch_size=size)
        self.log("train/syncnet_wt", self.syncnet_wt, batch_size=size)
        return total.detach()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The expert's loss during its stage, else the generator's sync and L1 losses."""
        size = len(batch["mel"])
        if self.in_expert_stage:
            loss = self.expert_loss(batch)
            self.log("val/expert_loss", loss, batch_size=size)
            return loss
        generated = self.generate(batch)
        sync = self.sync_loss(batch["mel"], generated)
        self._val_sync.append(sync.detach())
        self.log("val/sync_loss", sync, batch_size=size)
        self.log("val/l1", F.l1_loss(generated, batch["window"]), batch_size=size)
        return sync

    def on_validation_epoch_end(self) -> None:
        """Upstream's switch: the sync weight turns on once the eval sync loss < threshold."""
        if self._val_sync and not self.trainer.sanity_checking:
            mean = torch.stack(self._val_sync).mean()
            if mean < self.hparams.train["sync_threshold"]:
                self.syncnet_wt.fill_(float(self.hparams.train["syncnet_wt"]))
        self._val_sync.clear()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["syncnet_wt"] = float(self.syncnet_wt)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "syncnet_wt" in checkpoint:
            self.syncnet_wt.fill_(float(checkpoint["syncnet_wt"]))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        train = self.hparams.train
        betas = tuple(train["betas"]) if train["betas"] else (0.9, 0.999)
        if self.disc is not None and not train["betas"]:
            betas = GAN_BETAS
        optimizers = [
            torch.optim.Adam(self.expert.parameters(), lr=self.hparams.expert["lr"]),
            torch.optim.Adam(self.generator.parameters(), lr=train["lr"], betas=betas),
        ]
        if self.disc is not None:
            optimizers.append(
                torch.optim.Adam(self.disc.parameters(), lr=train["disc_lr"], betas=betas)
            )
        return optimizers


def trained_state(module: torch.nn.Module) -> dict[str, Any]:
    """Plain tensors of ``module`` (for writing in upstream's layout)."""
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}
