"""FOMM training as a LightningModule (first-order-model ``train.py`` and ``modules/model.py``).

Losses as upstream's ``GeneratorFullModel`` / ``DiscriminatorFullModel``
(:mod:`talking_heads.models.motion.losses`): multi-scale VGG19 perceptual loss on an
anti-aliased image pyramid, LSGAN generator loss with discriminator feature matching (computed
only when ``generator_gan`` ≠ 0), and keypoint equivariance of the values and Jacobians under
a random affine + TPS warp. Optimisation as upstream: Adam (β = 0.5, 0.999) with a learning
rate per network, MultiStepLR (γ = 0.1) per epoch on ``epoch_milestones``, the discriminator
stepped only when ``generator_gan`` ≠ 0.

Deviation: the generator and the keypoint detector share one Adam with two parameter groups
(upstream has two Adams with identical settings). Adam is element-wise, so the updates are the
same; one optimiser per backward pass keeps fp16 loss scaling correct (Lightning's scaler
updates its scale after every optimiser step) and keeps ``global_step`` equal to the number
of training iterations. The discriminator's step is likewise not counted in ``global_step``.
"""

from __future__ import annotations

from typing import Any

import torch

from talking_heads.config import plain
from talking_heads.models.fomm.networks import build_networks
from talking_heads.models.motion.blocks import ImagePyramide
from talking_heads.models.motion.training import (
    GANMotionLightning,
    frozen_on_device,
    gan_optimizer_config,
    keypoint_discriminator_losses,
    keypoint_gan_losses,
    log_validation_l1,
)
from talking_heads.nets.vgg19 import Vgg19, load_vgg19

__all__ = ["FOMMLightning", "load_vgg19"]


class FOMMLightning(GANMotionLightning):
    """FOMM: keypoint detector + occlusion-aware generator (+ discriminator) trained jointly.

    ``model_params`` and ``train_params`` are laid out as upstream's YAML (``config/vox-256
    .yaml``). ``perceptual_pretrained``: ``True`` loads upstream's ImageNet VGG19
    (``vgg19-dcbb9e9d.pth``) from the weights directory, a path loads that file (sha256-checked),
    ``False`` uses a randomly initialised VGG19 — a deviation from upstream for offline demos
    where the ImageNet weights cannot be downloaded. Batches are dicts with ``source`` and
    ``driving`` float tensors ``(B, 3, H, W)`` in [0, 1].
    """

    def __init__(
        self,
        model_params: dict,
        train_params: dict,
        perceptual_pretrained: bool | str = True,
        resolution: int = 256,
    ) -> None:
        super().__init__()
        model_params = plain(model_params)
        train_params = plain(train_params)
        perceptual_pretrained = plain(perceptual_pretrained)
        resolution = int(resolution)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.kp_detector, self.generator, self.discriminator = build_networks(model_params)
        self.train_params = train_params
        self.loss_weights = train_params["loss_weights"]
        self.scales = list(train_params["scales"])
        self.pyramid = ImagePyramide(self.scales, self.generator.num_channels)
        # the frozen VGG is kept out of the module tree: it is not part of FOMM's weights
        # and would add 80 MB to every checkpoint
        self._vgg = (
            [load_vgg19(perceptual_pretrained)] if sum(self.loss_weights["perceptual"]) else []
        )

    @property
    def vgg(self) -> Vgg19 | None:
        """The perceptual-loss network, on this module's device."""
        return frozen_on_device(self._vgg, self.device)

    @property
    def uses_gan(self) -> bool:
        """Whether the discriminator is trained (upstream: ``generator_gan`` ≠ 0)."""
        return self.loss_weights["generator_gan"] != 0

    # -- losses ---------------------------------------------------------------------------
    def generator_losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Upstream's ``GeneratorFullModel.forward``: weighted losses and generated outputs."""
        source, driving = batch["source"], batch["driving"]
        kp_source = self.kp_detector(source)
        kp_driving = self.kp_detector(driving)
        generated = self.generator(source, kp_source=kp_source, kp_driving=kp_driving)
        generated.update({"kp_source": kp_source, "kp_driving": kp_driving})
        return keypoint_gan_losses(self, driving, generated, self.kp_detector), generated

    def discriminator_losses(
        self, batch: dict[str, torch.Tensor], generated: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """Upstream's ``DiscriminatorFullModel.forward`` (LSGAN)."""
        return keypoint_discriminator_losses(self, batch, generated)

    # -- Lightning hooks ------------------------------------------------------------------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Reconstruct ``driving`` from ``source`` (absolute motion); log ``val/l1``."""
        kp_source = self.kp_detector(batch["source"])
        kp_driving = self.kp_detector(batch["driving"])
        prediction = self.generator(batch["source"], kp_source=kp_source, kp_driving=kp_driving)[
            "prediction"
        ]
        return log_validation_l1(self, prediction, batch["driving"])

    def configure_optimizers(self):
        return gan_optimizer_config(
            [(self.generator, "lr_generator"), (self.kp_detector, "lr_kp_detector")],
            self.discriminator,
            self.train_params,
        )
