"""Lightning helpers shared by the motion-transfer methods' LightningModules.

Upstream's training loops (FOMM lineage) share their optimisation: MultiStepLR (γ = 0.1)
stepped per epoch, one generator and one discriminator update per iteration (manual
optimisation), the same loss logging, and our ``init_checkpoint`` start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch


def load_init_checkpoint(module: pl.LightningModule) -> None:
    """Load ``module.hparams.init_checkpoint``'s weights (strictly) unless the fit resumes from
    a checkpoint or there is none."""
    if module.hparams.init_checkpoint and not module.trainer.ckpt_path:
        path = Path(module.hparams.init_checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"init_checkpoint not found: {path}")
        state = torch.load(path, map_location=module.device, weights_only=True)["state_dict"]
        module.load_state_dict(state, strict=True)


def log_training_losses(
    module: pl.LightningModule,
    losses: Mapping[str, torch.Tensor],
    batch_size: int,
    total: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log each of ``losses`` as ``train/<name>`` and ``total`` (default: their sum) as
    ``train/loss``; returns ``total``."""
    loss = sum(losses.values()) if total is None else total
    for name, value in losses.items():
        module.log(f"train/{name}", value, batch_size=batch_size)
    module.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
    return loss


def no_closure() -> None:
    """The closure ``strategy.optimizer_step`` needs (the gradients are already computed)."""


def gan_training_step(module: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One manual-optimisation step as upstream's ``train.py``: the generator update on
    ``module.generator_losses(batch)``, then (when ``module.uses_gan``) the discriminator update
    on ``module.discriminator_losses(batch, generated)``; all losses logged, ``train/loss`` being
    the generator's (:func:`log_training_losses`). Returns the detached generator loss."""
    opt_generator = module.optimizers()[0]
    losses, generated = module.generator_losses(batch)
    loss = sum(losses.values())
    opt_generator.zero_grad()
    module.manual_backward(loss)
    opt_generator.step()
    if module.uses_gan:
        opt_discriminator = module.optimizers(use_pl_optimizer=False)[1]
        disc_losses = module.discriminator_losses(batch, generated)
        opt_discriminator.zero_grad()
        module.manual_backward(sum(disc_losses.values()))
        # through the strategy (precision plugin, gradient clipping, hooks) but not the
        # LightningOptimizer wrapper, so that global_step counts iterations
        module.trainer.strategy.optimizer_step(opt_discriminator, closure=no_closure)
        losses.update(disc_losses)
    # ``train/loss`` is the generator's total, as before the discriminator's loss was added
    log_training_losses(module, losses, batch["source"].shape[0], total=loss)
    return loss.detach()


def step_gan_schedulers(module: Any) -> None:
    """The per-epoch step of the generator's and (when ``module.uses_gan``) the
    discriminator's schedulers (an optimiser that never stepped is not scheduled: torch
    warns)."""
    scheduler_generator, scheduler_discriminator = module.lr_schedulers()
    scheduler_generator.step()
    if module.uses_gan:
        scheduler_discriminator.step()


def multistep_config(optimizer: torch.optim.Optimizer, milestones: Sequence[int]) -> dict:
    """Lightning's optimiser config: MultiStepLR (γ = 0.1) stepped per epoch."""
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma=0.1)
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
    }
