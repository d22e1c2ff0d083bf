"""face-vid2vid training as a LightningModule (official ``train.py`` and ``modules/model.py``).

Per batch, as upstream's ``GeneratorFullModel``: canonical keypoints of the source, head pose
and expression of source and driving frame, the transformed keypoints of both, the generated
driving frame, and the weighted losses:

- multi-scale VGG19 perceptual loss (FOMM's, :func:`talking_heads.models.motion.losses
  .perceptual_loss`);
- GAN (``gan_mode`` ``hinge`` as in vox-256, or ``ls``) with discriminator feature matching,
  when ``generator_gan`` ≠ 0;
- equivariance of the keypoints' (x, y) projection under a random affine + TPS warp of the
  driving frame (values; Jacobians when estimated);
- the keypoint prior (distance margin 0.1, mean depth 0.33);
- the headpose loss: L1 of the estimated yaw/pitch/roll against a frozen Hopenet's on the
  driving frame (``train_params.hopenet_snapshot``, see :mod:`~talking_heads.models.fv2v
  .hopenet`), when ``headpose`` ≠ 0;
- the L1 norm of the expression deltas.

Optimisation as upstream: Adam (β = 0.5, 0.999) with a learning rate per network, MultiStepLR
(γ = 0.1) per epoch on ``epoch_milestones``; the discriminator (hinge/LS loss on the detached
prediction) is stepped only when ``generator_gan`` ≠ 0.

Deviations:

- the generator, keypoint detector and head-pose estimator share one Adam with three parameter
  groups (upstream: three Adams with identical settings, stepped after the same backward pass).
  Adam is element-wise, so the updates are the same; one optimiser per backward pass keeps fp16
  loss scaling correct and ``global_step`` equal to the number of iterations (the
  discriminator's step is likewise not counted), as in :class:`~talking_heads.models.fomm
  .module.FOMMLightning`;
- upstream puts Hopenet in eval mode only when CUDA is available; here it is always in eval
  mode (frozen, outside the module tree) and runs without gradients, which changes nothing
  in the gradients of the trained networks.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from talking_heads.config import plain
from talking_heads.models.fv2v import losses as L
from talking_heads.models.fv2v.networks import build_networks, keypoint_transformation
from talking_heads.models.motion.blocks import ImagePyramide
from talking_heads.models.motion.training import (
    GANMotionLightning,
    frozen_on_device,
    gan_optimizer_config,
    log_validation_l1,
    pyramid_discriminator_losses,
    pyramid_generator_losses,
)
from talking_heads.nets.hopenet import Hopenet, hopenet_input, load_hopenet
from talking_heads.nets.vgg19 import Vgg19, load_vgg19

__all__ = ["FV2VLightning"]


class FV2VLightning(GANMotionLightning):
    """face-vid2vid: canonical keypoint detector, head-pose/expression estimator, generator
    (``generator_type`` ``spade`` or ``original``) and discriminator, trained jointly.

    ``model_params`` and ``train_params`` are laid out as upstream's YAML (``config/vox-256
    .yaml``); ``generator_type`` is upstream's ``--gen`` flag (``run.py`` defaults to
    ``original``, ``demo.py`` and the released Vox-256-New checkpoint use ``spade``).
    ``perceptual_pretrained``: ``True`` loads upstream's ImageNet VGG19 from the weights
    directory, a path loads that file, ``False`` uses a random VGG19 (offline demos; a
    deviation). Batches are dicts with ``source`` and ``driving`` ``(B, 3, H, W)`` in [0, 1].
    """

    def __init__(
        self,
        model_params: dict,
        train_params: dict,
        perceptual_pretrained: bool | str = True,
        resolution: int = 256,
        generator_type: str = "spade",
    ) -> None:
        super().__init__()
        model_params = plain(model_params)
        train_params = plain(train_params)
        perceptual_pretrained = plain(perceptual_pretrained)
        resolution = int(resolution)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.kp_detector, self.he_estimator, self.generator, self.discriminator = build_networks(
            model_params, generator_type
        )
        self.estimate_jacobian = bool(model_params["common_params"].get("estimate_jacobian"))
        self.train_params = train_params
        self.loss_weights = train_params["loss_weights"]
        self.gan_mode = train_params.get("gan_mode", "hinge")
        self.scales = list(train_params["scales"])
        self.pyramid = ImagePyramide(self.scales, self.generator.image_channel)
        # frozen teachers are kept out of the module tree: they are not part of the method's
        # weights, and Lightning's train() would switch them out of eval mode
        self._vgg = (
            [load_vgg19(perceptual_pretrained)] if sum(self.loss_weights["perceptual"]) else []
        )
        # loaded on first use, so that a trained or imported model loads without it
        self._hopenet: list[Hopenet] = []

    @property
    def vgg(self) -> Vgg19 | None:
        """The perceptual-loss network, on this module's device."""
        return frozen_on_device(self._vgg, self.device)

    @property
    def hopenet(self) -> Hopenet | None:
        """The head-pose teacher on this module's device (``None`` when ``headpose`` is 0);
        loaded from ``train_params.hopenet_snapshot`` on first use."""
        if not self.loss_weights.get("headpose", 0):
            return None
        if not self._hopenet:
            self._hopenet.append(load_hopenet(self.train_params.get("hopenet_snapshot")))
        return frozen_on_device(self._hopenet, self.device)

    @property
    def uses_gan(self) -> bool:
        """Whether the discriminator is trained (upstream: ``generator_gan`` ≠ 0)."""
        return self.loss_weights["generator_gan"] != 0

    # -- forward and losses ---------------------------------------------------------------
    def keypoints(
        self, kp_canonical: dict[str, torch.Tensor], he: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The canonical keypoints transformed by a head pose and expression."""
        return keypoint_transformation(kp_canonical, he, self.estimate_jacobian)

    def generator_losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Upstream's ``GeneratorFullModel.forward``: weighted losses and generated outputs."""
        source, driving = batch["source"], batch["driving"]
        kp_canonical = self.kp_detector(source)
        he_source = self.he_estimator(source)
        he_driving = self.he_estimator(driving)
        kp_source = self.keypoints(kp_canonical, he_source)
        kp_driving = self.keypoints(kp_canonical, he_driving)
        generated = self.generator(source, kp_source=kp_source, kp_driving=kp_driving)
        generated.update({"kp_source": kp_source, "kp_driving": kp_driving})
        weights = self.loss_weights
        losses = pyramid_generator_losses(
            self,
            driving,
            generated["prediction"],
            self.discriminator,
            partial(L.generator_gan_loss, gan_mode=self.gan_mode),
        )
        losses.update(
            L.equivariance_losses(
                lambda frame: self.keypoints(kp_canonical, self.he_estimator(frame)),
                driving,
                kp_driving,
                self.train_params["transform_params"],
                weights["equivariance_value"],
                weights["equivariance_jacobian"],
            )
        )
        if weights.get("keypoint", 0) != 0:
            losses["keypoint"] = weights["keypoint"] * L.keypoint_prior_loss(kp_driving["value"])
        hopenet = self.hopenet
        if hopenet is not None:
            with torch.no_grad():
                teacher = hopenet(hopenet_input(driving))
            losses["headpose"] = weights["headpose"] * L.headpose_loss(he_driving, teacher)
        if weights.get("expression", 0) != 0:
            losses["expression"] = weights["expression"] * L.expression_loss(he_driving["exp"])
        return losses, generated

    def discriminator_losses(
        self, batch: dict[str, torch.Tensor], generated: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """Upstream's ``DiscriminatorFullModel.forward``."""
        return pyramid_discriminator_losses(
            self,
            batch["driving"],
            generated["prediction"],
            self.discriminator,
            partial(L.discriminator_gan_loss, gan_mode=self.gan_mode),
        )

    # -- Lightning hooks ------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Load the head-pose teacher before the first step (a missing file stops here)."""
        self.hopenet  # noqa: B018

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Reconstruct ``driving`` from ``source`` (absolute motion); log ``val/l1``."""
        source, driving = batch["source"], batch["driving"]
        kp_canonical = self.kp_detector(source)
        kp_source = self.keypoints(kp_canonical, self.he_estimator(source))
        kp_driving = self.keypoints(kp_canonical, self.he_estimator(driving))
        prediction = self.generator(source, kp_source=kp_source, kp_driving=kp_driving)[
            "prediction"
        ]
        return log_validation_l1(self, prediction, driving)

    def configure_optimizers(self):
        return gan_optimizer_config(
            [
                (self.generator, "lr_generator"),
                (self.kp_detector, "lr_kp_detector"),
                (self.he_estimator, "lr_he_estimator"),
            ],
            self.discriminator,
            self.train_params,
        )
