"""LipGAN training (upstream ``train.py``), in Lightning with manual optimisation.

Per batch, as upstream's loop: the generator's fakes are predicted in inference mode
(``gen.predict``: BatchNorm on its moving statistics); then the discriminator, with the
contrastive loss (margin 1; label 0 = synced real pair, 1 = fake), takes one Adam step on
either (fake, audio) → 1 or (real, audio rolled by 10 along the batch, ``np.roll(audio, 10,
axis=0)``) → 1, chosen by a fair coin (the other is only evaluated), and one on
(real, audio) → 0; then the combined model (discriminator frozen) takes one generator step on
``1·MAE(fake, real) + 0.01·contrastive(D(fake, audio), 0)``. Both Adams: lr 1e-4, Keras'
betas (0.9, 0.999) and epsilon 1e-7 (Keras puts epsilon outside the bias correction of the
second moment, PyTorch inside: a negligible difference).

The generator's input is upstream's 6 channels: the reference frame (≥ 6 frames from the
target), then the target with its lower half zeroed; BGR in [0, 1]
(:class:`talking_heads.training.lipgan_data.LipGANFrameDataModule`).

Note: with a batch size that divides 10, upstream's roll by 10 leaves every audio in place
(the "unsynced" pairs are synced); keep the batch size from dividing 10.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch.nn import functional as F

from talking_heads.config import plain
from talking_heads.models.lipgan.networks import (
    LipGANDiscriminator,
    LipGANGeneratorNet,
    contrastive_loss,
)

DEFAULT_TRAIN = {
    "lr": 1.0e-4,
    "disc_lr": 1.0e-4,
    "mae_wt": 1.0,
    "adv_wt": 0.01,
    "margin": 1.0,
    "roll": 10,
    "eps": 1.0e-7,
}


def masked_input(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Upstream's 6-channel face: the reference, then the target with rows ``H//2:`` zeroed."""
    masked = target.clone()
    masked[:, :, target.size(2) // 2 :] = 0
    return torch.cat([reference, masked], dim=1)


class LipGANLightning(pl.LightningModule):
    """Generator + audio-visual discriminator (see the module docstring). ``width`` divides
    the channel counts (1: the published networks)."""

    def __init__(
        self,
        width: int = 1,
        variant: str = "residual",
        audio: str = "mel80x27",
        resolution: int = 96,
        train: dict | None = None,
    ) -> None:
        super().__init__()
        train = {**DEFAULT_TRAIN, **(plain(train) or {})}
        self.save_hyperparameters(
            {
                "width": int(width),
                "variant": str(variant),
                "audio": str(audio),
                "resolution": int(resolution),
                "train": train,
            }
        )
        self.automatic_optimization = False
        self.generator = LipGANGeneratorNet(width, variant, audio)
        self.disc = LipGANDiscriminator(width, audio)
        self._coin = torch.Generator().manual_seed(0)

    def contrastive(self, d: torch.Tensor, label: float) -> torch.Tensor:
        return contrastive_loss(torch.full_like(d, label), d, self.hparams.train["margin"])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        opt_gen, opt_disc = self.optimizers()
        train = self.hparams.train
        real, audio = batch["face"], batch["audio"]
        faces = masked_input(real, batch["reference"])
        size = len(real)
        self.generator.eval()  # gen.predict
        with torch.no_grad():
            fakes = self.generator(faces, audio)
        self.generator.train()
        unsynced_audio = torch.roll(audio, int(train["roll"]), dims=0)
        parts: dict[str, torch.Tensor] = {}
        train_fake = bool(torch.randint(0, 2, (1,), generator=self._coin).item())
        for name, (face, sound), trained in (
            ("disc_fake", (fakes, audio), train_fake),
            ("disc_unsync", (real, unsynced_audio), not train_fake),
        ):
            if trained:
                loss = self.contrastive(self.disc(face, sound), 1.0)
                opt_disc.zero_grad()
                self.manual_backward(loss)
                opt_disc.step()
            else:
                with torch.no_grad():
                    loss = self.contrastive(self.disc(face, sound), 1.0)
            parts[name] = loss.detach()
        sync = self.contrastive(self.disc(real, audio), 0.0)
        opt_disc.zero_grad()
        self.manual_backward(sync)
        opt_disc.step()
        parts["disc_sync"] = sync.detach()
        # the combined model: discriminator frozen, generator in training mode
        self.disc.requires_grad_(False)
        generated = self.generator(faces, audio)
        mae = F.l1_loss(generated, real)
        adv = self.contrastive(self.disc(generated, audio), 0.0)
        total = train["mae_wt"] * mae + train["adv_wt"] * adv
        opt_gen.zero_grad()
        self.manual_backward(total)
        opt_gen.step()
        self.disc.requires_grad_(True)
        parts.update(mae=mae.detach(), adv=adv.detach())
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=size)
        self.log("train/loss", total.detach(), prog_bar=True, batch_size=size)
        return total.detach()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The generator's MAE and the discriminator's distance of its fakes (inference mode)."""
        real, audio = batch["face"], batch["audio"]
        generated = self.generator(masked_input(real, batch["reference"]), audio)
        mae = F.l1_loss(generated, real)
        self.log("val/mae", mae, batch_size=len(real))
        self.log("val/fake_distance", self.disc(generated, audio).mean(), batch_size=len(real))
        return mae

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        train = self.hparams.train
        return [
            torch.optim.Adam(self.generator.parameters(), lr=train["lr"], eps=train["eps"]),
            torch.optim.Adam(self.disc.parameters(), lr=train["disc_lr"], eps=train["eps"]),
        ]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["method"] = "lipgan"
