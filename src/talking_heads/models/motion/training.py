"""Lightning helpers shared by the motion-transfer methods' LightningModules.

Upstream's training loops (FOMM lineage) share their optimisation: MultiStepLR (γ = 0.1)
stepped per epoch, one generator and one discriminator update per iteration (manual
optimisation), the same loss logging, and our ``init_checkpoint`` start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from talking_heads.models.motion import losses as L
from talking_heads.models.motion.blocks import detach_kp
from talking_heads.models.motion.keypoint_networks import Keypoints

#: Adam's betas in every upstream training loop of the lineage
BETAS = (0.5, 0.999)


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


def gan_optimizer_config(
    generator_groups: Sequence[tuple[nn.Module, str]],
    discriminator: nn.Module,
    train_params: Mapping[str, Any],
) -> tuple[list[torch.optim.Optimizer], list[torch.optim.lr_scheduler.MultiStepLR]]:
    """One Adam over the generator-side networks (a parameter group per ``(network, lr key)``
    of ``generator_groups``, the rate ``train_params[key]``) and one over the discriminator
    (``lr_discriminator``), each with a MultiStepLR (γ = 0.1) on ``epoch_milestones``."""
    opt_generator = torch.optim.Adam(
        [
            {"params": network.parameters(), "lr": train_params[key]}
            for network, key in generator_groups
        ],
        betas=BETAS,
    )
    opt_discriminator = torch.optim.Adam(
        discriminator.parameters(), lr=train_params["lr_discriminator"], betas=BETAS
    )
    milestones = list(train_params["epoch_milestones"])
    schedulers = [
        torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
        for opt in (opt_generator, opt_discriminator)
    ]
    return [opt_generator, opt_discriminator], schedulers


def frozen_on_device(holder: list, device: torch.device) -> Any:
    """The frozen network kept (outside the module tree) in the one-element ``holder``, moved
    to ``device`` when it is elsewhere; ``None`` when ``holder`` is empty."""
    if not holder:
        return None
    if next(holder[0].buffers()).device != device:
        holder[0] = holder[0].to(device)
    return holder[0]


def pyramid_generator_losses(
    module: Any,
    driving: torch.Tensor,
    prediction: torch.Tensor,
    discriminate: Callable[[dict[str, torch.Tensor]], Mapping[str, Any]],
    gan_loss: Callable[[Mapping[str, Any], Sequence[float], float], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The image-pyramid losses of upstream's ``GeneratorFullModel``: the VGG19 perceptual
    loss (when ``module.vgg``) and, when ``module.uses_gan``, ``gan_loss`` on
    ``discriminate(generated pyramid)`` and the feature matching against
    ``discriminate(real pyramid)`` (when its weights are not all 0); weights from
    ``module.loss_weights``."""
    weights = module.loss_weights
    losses: dict[str, torch.Tensor] = {}
    real = module.pyramid(driving)
    fake = module.pyramid(prediction)
    vgg = module.vgg
    if vgg is not None:
        losses["perceptual"] = L.perceptual_loss(
            vgg, fake, real, module.scales, weights["perceptual"]
        )
    if module.uses_gan:
        disc_scales = module.discriminator.scales
        maps_fake = discriminate(fake)
        maps_real = discriminate(real)
        losses["gen_gan"] = gan_loss(maps_fake, disc_scales, weights["generator_gan"])
        if sum(weights["feature_matching"]) != 0:
            losses["feature_matching"] = L.feature_matching_loss(
                maps_real, maps_fake, disc_scales, weights["feature_matching"]
            )
    return losses


def pyramid_discriminator_losses(
    module: Any,
    driving: torch.Tensor,
    prediction: torch.Tensor,
    discriminate: Callable[[dict[str, torch.Tensor]], Mapping[str, Any]],
    gan_loss: Callable[[Mapping[str, Any], Mapping[str, Any], Sequence[float], float], Any],
) -> dict[str, torch.Tensor]:
    """Upstream's ``DiscriminatorFullModel.forward``: ``gan_loss`` of ``discriminate`` on the
    real and the (detached) generated pyramids, as ``disc_gan``."""
    maps_fake = discriminate(module.pyramid(prediction.detach()))
    maps_real = discriminate(module.pyramid(driving))
    value = gan_loss(
        maps_real, maps_fake, module.discriminator.scales, module.loss_weights["discriminator_gan"]
    )
    return {"disc_gan": value}


def log_validation_l1(
    module: pl.LightningModule, prediction: torch.Tensor, driving: torch.Tensor
) -> torch.Tensor:
    """Log and return the reconstruction's mean L1 error as ``val/l1``."""
    l1 = torch.abs(prediction - driving).mean()
    module.log("val/l1", l1, prog_bar=True, batch_size=driving.shape[0])
    return l1


def keypoint_gan_losses(
    module: Any,
    driving: torch.Tensor,
    generated: Mapping[str, Any],
    detector: Callable[[torch.Tensor], Keypoints],
) -> dict[str, torch.Tensor]:
    """FOMM's generator losses (also DaGAN's): the pyramid perceptual loss, the LSGAN and
    feature-matching terms of the keypoint-conditioned discriminator, and the equivariance of
    ``detector`` (values and Jacobians); weights from ``module.loss_weights``."""
    kp = detach_kp(generated["kp_driving"])
    weights = module.loss_weights
    losses = pyramid_generator_losses(
        module,
        driving,
        generated["prediction"],
        lambda pyramid: module.discriminator(pyramid, kp=kp),
        L.generator_gan_loss,
    )
    losses.update(
        L.equivariance_losses(
            detector,
            driving,
            generated["kp_driving"],
            module.train_params["transform_params"],
            weights["equivariance_value"],
            weights["equivariance_jacobian"],
        )
    )
    return losses


def keypoint_discriminator_losses(
    module: Any, batch: Mapping[str, torch.Tensor], generated: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """Upstream's ``DiscriminatorFullModel.forward`` (LSGAN, keypoint-conditioned) of FOMM and
    DaGAN."""
    kp = detach_kp(generated["kp_driving"])
    return pyramid_discriminator_losses(
        module,
        batch["driving"],
        generated["prediction"],
        lambda pyramid: module.discriminator(pyramid, kp=kp),
        L.discriminator_gan_loss,
    )


class GANMotionLightning(pl.LightningModule):
    """Base of the lineage's GAN LightningModules (FOMM, DaGAN, face-vid2vid): one generator
    and one discriminator update per iteration (:func:`gan_training_step`), the schedulers
    stepped per epoch (:func:`step_gan_schedulers`). Subclasses give ``generator_losses``,
    ``discriminator_losses``, ``configure_optimizers`` and ``validation_step``."""

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return gan_training_step(self, batch)

    def on_train_epoch_end(self) -> None:
        step_gan_schedulers(self)
