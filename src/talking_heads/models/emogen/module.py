"""EmoGen training (``color_syncnet_train.py``, ``emotion_disc_train.py``, ``train.py``):
the lip-sync expert, then the emotion discriminator, then the generator, in one run.

* Expert stage (:class:`~talking_heads.models.lipsync.training.LipSyncLightning`): skipped
  when ``expert.checkpoint`` names a trained one.
* Emotion-discriminator stage (``emotion_disc.steps`` steps, skipped when
  ``emotion_disc.checkpoint`` names ``emotion_disc_train.py``'s ``disc_emo_{step}.pth``):
  cross-entropy of :class:`DISCEMO` on the ground-truth windows against their emotion, Adam
  lr 1e-6 betas (0.5, 0.999), StepLR(150, 0.1) stepped once per epoch as upstream.
* Generator stage, as ``train.py``: the whole target face masked, and
  ``loss = w·sync + pl_wt·perceptual + emo_wt·CE(DISCEMO(generated), emotion)
  + (1 − w − pl_wt − emo_wt)·L1`` with emo_wt = pl_wt = 0.01, the sync weight ``w`` 0 until
  the eval sync loss < 0.75, then 0.03; Adam 1e-4 betas (0.5, 0.999). DISCEMO is frozen for
  the generator's loss, then trained one step on the ground-truth windows (``loss_real_c``);
  its scheduler is not stepped there (upstream never steps it in ``train.py``).

Deviations: one run and one batch size for the three stages (upstream: three scripts,
batches 128 / 64 / 16); the emotion discriminator's weights travel in the checkpoint under
``emotion_disc.``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from talking_heads.config import plain
from talking_heads.models.emogen.discemo import DISCEMO, emotion_disc_optimizer, load_emotion_disc
from talking_heads.models.emogen.perceptual import PerceptionLoss
from talking_heads.models.lipsync.training import LipSyncLightning, no_closure

#: ``hparams.py`` / ``train.py`` values that differ from Wav2Lip's
EMOGEN_TRAIN = {
    "syncnet_wt": 0.03,
    "emo_wt": 0.01,
    "pl_wt": 0.01,
    "betas": (0.5, 0.999),
}
DEFAULT_EMOTION_DISC = {"checkpoint": None, "steps": 0, "lr": 1.0e-6, "width": None}


def emotion_target(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Class indices of the batch's one-hot emotions (upstream ``argmax(emotion, dim=1)``)."""
    return batch["emotion"].argmax(dim=1)


class EmoGenLightning(LipSyncLightning):
    """EmoGen: the whole face masked, a 6-class emotion, DISCEMO and VGG19 losses.

    ``perceptual_pretrained``: ``True`` loads torchvision's ImageNet VGG19 from the weights
    directory (as upstream), a path that file, ``False`` random VGG features (offline
    demo/tests; a deviation). ``perceptual_width`` > 1 narrows that random VGG (demo only).
    """

    mask_whole_face = True

    def __init__(
        self,
        width: int = 1,
        emotions: int = 6,
        expert: dict | None = None,
        train: dict | None = None,
        resolution: int = 96,
        emotion_disc: dict | None = None,
        perceptual_pretrained: bool | str = True,
        perceptual_width: int = 1,
    ) -> None:
        if int(emotions) < 1:
            raise ValueError("EmoGen's generator takes an emotion (emotions: 6)")
        train = {**EMOGEN_TRAIN, **(plain(train) or {})}
        super().__init__(width, emotions, expert, train, resolution)
        emotion_disc = {**DEFAULT_EMOTION_DISC, **(plain(emotion_disc) or {})}
        perceptual_pretrained = plain(perceptual_pretrained)
        self.save_hyperparameters(
            {
                **self.hparams,
                "emotion_disc": emotion_disc,
                "perceptual_pretrained": perceptual_pretrained,
                "perceptual_width": int(perceptual_width),
            }
        )
        self.emotion_disc = DISCEMO(emotion_disc["width"] or width, int(emotions), resolution)
        if emotion_disc["checkpoint"]:
            load_emotion_disc(emotion_disc["checkpoint"], self.emotion_disc)
        # kept out of the module tree: VGG19 is not part of EmoGen's weights
        self._perceptual = [PerceptionLoss(perceptual_pretrained, int(perceptual_width))]
        self._disc_epoch = False  # whether this epoch held emotion-discriminator-stage steps

    # -- stages ---------------------------------------------------------------------------
    @property
    def emotion_disc_steps(self) -> int:
        """Steps of the emotion-discriminator stage (0 when a trained one was given)."""
        disc = self.hparams.emotion_disc
        return 0 if disc["checkpoint"] else int(disc["steps"])

    @property
    def in_emotion_disc_stage(self) -> bool:
        start = self.expert_steps
        return start <= self.global_step < start + self.emotion_disc_steps

    @property
    def perceptual(self) -> PerceptionLoss:
        """The frozen VGG19 loss, on this module's device."""
        loss = self._perceptual[0]
        if next(loss.parameters()).device != self.device:
            self._perceptual[0] = loss = loss.to(self.device)
        return loss

    def emotion_disc_loss(
        self, faces: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """DISCEMO's cross-entropy of ``faces`` against the batch's emotions."""
        return F.cross_entropy(self.emotion_disc(faces).float(), emotion_target(batch))

    def emotion_disc_stage_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``emotion_disc_train.py``'s step on the ground-truth windows."""
        opt = self.optimizers()[-1]
        self.emotion_disc.train()
        loss = self.emotion_disc_loss(batch["window"], batch)
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        self._disc_epoch = True
        self.log("train/emotion_disc_loss", loss, prog_bar=True, batch_size=len(batch["mel"]))
        return loss.detach()

    def emotion_disc_update(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``train.py``'s DISCEMO step after each generator step (``loss_real_c``)."""
        opt = self.optimizers(use_pl_optimizer=False)[-1]
        loss = self.emotion_disc_loss(batch["window"], batch)
        opt.zero_grad()
        self.manual_backward(loss)
        self.trainer.strategy.optimizer_step(opt, closure=no_closure)
        return loss.detach()

    def extra_losses(
        self, batch: dict[str, torch.Tensor], generated: torch.Tensor
    ) -> dict[str, tuple[float, torch.Tensor]]:
        train = self.hparams.train
        return {
            "emo": (float(train["emo_wt"]), self.emotion_disc_loss(generated, batch)),
            "perceptual": (float(train["pl_wt"]), self.perceptual(generated, batch["window"])),
        }

    # -- Lightning hooks ------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.in_emotion_disc_stage:
            return self.emotion_disc_stage_step(batch)
        if self.in_expert_stage:
            return super().training_step(batch, batch_idx)
        self.emotion_disc.train()
        self.emotion_disc.requires_grad_(False)
        try:
            total = super().training_step(batch, batch_idx)
        finally:
            self.emotion_disc.requires_grad_(True)
        real = self.emotion_disc_update(batch)
        self.log("train/emotion_disc_real", real, batch_size=len(batch["mel"]))
        return total

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The current stage's losses; DISCEMO's on the ground truth in every stage after
        its own (as ``eval_model``'s ``loss_real_c``), with its accuracy."""
        size = len(batch["mel"])
        if self.in_expert_stage:
            return super().validation_step(batch, batch_idx)
        logits = self.emotion_disc(batch["window"])
        real = F.cross_entropy(logits.float(), emotion_target(batch))
        accuracy = (logits.argmax(1) == emotion_target(batch)).float().mean()
        self.log("val/emotion_disc_real", real, batch_size=size)
        self.log("val/emotion_accuracy", accuracy, batch_size=size)
        if self.in_emotion_disc_stage:
            return real
        generated = self.generate(batch)
        sync = self.sync_loss(batch["mel"], generated)
        self._val_sync.append(sync.detach())
        self.log("val/sync_loss", sync, batch_size=size)
        self.log("val/l1", F.l1_loss(generated, batch["window"]), batch_size=size)
        self.log("val/emo", self.emotion_disc_loss(generated, batch), batch_size=size)
        self.log("val/perceptual", self.perceptual(generated, batch["window"]), batch_size=size)
        return sync

    def on_train_epoch_end(self) -> None:
        """``emotion_disc_train.py`` steps DISCEMO's StepLR once per epoch of its training."""
        if self._disc_epoch:
            self.lr_schedulers().step()
        self._disc_epoch = False

    def configure_optimizers(self) -> Any:
        optimizers = super().configure_optimizers()
        lr = float(self.hparams.emotion_disc["lr"])
        opt, scheduler = emotion_disc_optimizer(self.emotion_disc, lr)
        return [*optimizers, opt], [scheduler]
