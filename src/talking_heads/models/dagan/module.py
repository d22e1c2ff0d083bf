"""DaGAN training as a LightningModule (CVPR2022-DaGAN ``train.py`` and ``modules/model.py``).

As upstream's ``GeneratorFullModel`` in ``--rgbd`` mode: the frozen depth network gives the
disparity of the source and driving frames, the keypoint detector runs on frame‖disparity, and
the depth-aware generator reconstructs the driving frame from the source and its disparity.
Losses (FOMM's, :mod:`talking_heads.models.motion.losses`): the pyramid VGG19 perceptual loss,
the LSGAN generator loss with feature matching on the keypoint-conditioned discriminator
(when ``generator_gan`` ≠ 0), keypoint equivariance (the warped driving frame's disparity is
recomputed, as upstream), and DaGAN's:

- ``kp_distance`` (weight 10 in upstream's ``run.py``): for the source and the driving
  keypoints, mean(1 − sign(‖k_i − k_j‖ + 0.2·[i = j] − 0.2)), i.e. twice the fraction of
  keypoint pairs closer than 0.2. It is built on ``torch.sign``, whose gradient is zero, so
  upstream's term adds to the reported loss but nothing to any gradient; here it is computed
  exactly as upstream and detached (same value, same — zero — gradient, no autograd graph).
- ``depth_constraint`` (weight 0 in upstream's ``run.py``): w · mean|depth(driving) −
  depth(prediction)|, with the gradient flowing through the frozen depth network.

The discriminator loss is upstream's LSGAN. Optimisation as upstream: Adam (β = 0.5, 0.999)
with a learning rate per network, MultiStepLR (γ = 0.1) per epoch on ``epoch_milestones``; the
depth network is never trained and always in eval mode (upstream calls ``.eval()`` on it once
and never ``.train()``).

Deviations: as :class:`~talking_heads.models.fomm.module.FOMMLightning`, the generator and the
keypoint detector share one Adam with two parameter groups (element-wise, so the same updates)
and the discriminator's step is not counted in ``global_step``. The depth network is part of
the module (its weights are in our checkpoints, so animation needs no separate file); it is
loaded from ``depth_pretrained``: ``True`` the registered released model in the weights
directory, a path a folder with upstream's ``encoder.pth`` and ``depth.pth``, ``False`` a
randomly initialised frozen network (offline demos only: the keypoints then see a random
depth-like channel). The vox-256 experiment uses ``demo.py``'s ResNet-18 depth model
(``weights_19``), the one the released checkpoints go with; upstream's training code loads a
ResNet-50 VoxCeleb2 model (``model_params.depth_params.num_layers: 50``), which the maintainer
reports did not give a better DaGAN. Upstream's ``kp_prior`` and ``kp_scale`` terms (weight 0,
and ``kp_prior`` writes into ``kp_distance`` with that term's weight) are not implemented: a
non-zero weight raises. ``perceptual_pretrained=False`` uses a random VGG19 (offline demos).
"""

from __future__ import annotations

from typing import Any

import torch

from talking_heads.config import plain
from talking_heads.models.dagan.depth import (
    build_depth,
    estimate_depth,
    load_depth_weights,
    official_depth_states,
)
from talking_heads.models.dagan.networks import build_networks
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

Keypoints = dict[str, torch.Tensor]
#: upstream loss terms that are not implemented (their weight must be 0)
UNSUPPORTED_LOSSES = ("kp_prior", "kp_scale")


def kp_distance_loss(kp_source: Keypoints, kp_driving: Keypoints, weight: float) -> torch.Tensor:
    """Upstream's ``kp_distance`` term (detached: ``torch.sign`` has no gradient).

    w · Σ_{source, driving} mean_{i,j}(1 − sign(‖k_i − k_j‖ + 0.2·[i = j] − 0.2)): 2 for each
    pair of distinct keypoints closer than 0.2, averaged over all K² pairs.
    """
    total = torch.zeros((), device=kp_source["value"].device)
    with torch.no_grad():
        for kp in (kp_source, kp_driving):
            value = kp["value"]
            num_kp = value.shape[1]
            diff = value.unsqueeze(2) - value.unsqueeze(1)
            distance = torch.sqrt((diff * diff).sum(-1) + 1e-8)
            eye = torch.eye(num_kp, dtype=value.dtype, device=value.device)
            total = total + (1 - torch.sign(distance + eye * 0.2 - 0.2)).mean()
    return weight * total


class DaGANLightning(GANMotionLightning):
    """DaGAN: depth network (frozen) + keypoint detector + depth-aware generator +
    discriminator.

    ``model_params`` and ``train_params`` are laid out as upstream's YAML
    (``config/vox-adv-256.yaml``) with ``model_params.depth_params`` for the depth network;
    ``depth_pretrained`` and ``perceptual_pretrained`` as in the module docstring. Batches are
    dicts with ``source`` and ``driving`` float tensors ``(B, 3, H, W)`` in [0, 1].
    """

    def __init__(
        self,
        model_params: dict,
        train_params: dict,
        perceptual_pretrained: bool | str = True,
        depth_pretrained: bool | str = True,
        resolution: int = 256,
    ) -> None:
        super().__init__()
        model_params = plain(model_params)
        train_params = plain(train_params)
        perceptual_pretrained = plain(perceptual_pretrained)
        depth_pretrained = plain(depth_pretrained)
        resolution = int(resolution)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.loss_weights = train_params["loss_weights"]
        unsupported = [name for name in UNSUPPORTED_LOSSES if self.loss_weights.get(name, 0)]
        if unsupported:
            raise ValueError(f"DaGAN loss terms {unsupported} are not implemented (weight 0)")
        self.kp_detector, self.generator, self.discriminator = build_networks(model_params)
        self.depth_encoder, self.depth_decoder = build_depth(model_params.get("depth_params"))
        if depth_pretrained:
            encoder_state, decoder_state, paths = load_depth_weights(
                depth_pretrained, self.depth_encoder.num_layers
            )
            states = official_depth_states(
                self.depth_encoder,
                self.depth_decoder,
                encoder_state,
                decoder_state,
                source=str(paths[0].parent),
            )
            self.depth_encoder.load_state_dict(states["depth_encoder"], strict=True)
            self.depth_decoder.load_state_dict(states["depth_decoder"], strict=True)
        for network in (self.depth_encoder, self.depth_decoder):
            network.requires_grad_(False)
            network.eval()
        self.train_params = train_params
        self.scales = list(train_params["scales"])
        self.pyramid = ImagePyramide(self.scales, self.generator.num_channels)
        # the frozen VGG is kept out of the module tree: it is not part of DaGAN's weights
        self._vgg = (
            [load_vgg19(perceptual_pretrained)] if sum(self.loss_weights["perceptual"]) else []
        )

    def train(self, mode: bool = True) -> DaGANLightning:
        """Train mode for every network but the frozen depth network (always eval)."""
        super().train(mode)
        self.depth_encoder.eval()
        self.depth_decoder.eval()
        return self

    @property
    def vgg(self) -> Vgg19 | None:
        """The perceptual-loss network, on this module's device."""
        return frozen_on_device(self._vgg, self.device)

    @property
    def uses_gan(self) -> bool:
        """Whether the discriminator is trained (upstream: ``generator_gan`` ≠ 0)."""
        return self.loss_weights["generator_gan"] != 0

    def depth(self, frames: torch.Tensor) -> torch.Tensor:
        """The frozen network's disparity ``(B, 1, H, W)``, without an autograd graph."""
        with torch.no_grad():
            return estimate_depth(self.depth_encoder, self.depth_decoder, frames)

    def keypoints(self, frames: torch.Tensor, depth: torch.Tensor | None = None) -> Keypoints:
        """Keypoints of frames‖disparity (the disparity computed when not given)."""
        depth = self.depth(frames) if depth is None else depth
        return self.kp_detector(torch.cat([frames, depth], dim=1))

    # -- losses ---------------------------------------------------------------------------
    def generator_losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Upstream's ``GeneratorFullModel.forward`` (``--rgbd``): weighted losses and the
        generated outputs."""
        source, driving = batch["source"], batch["driving"]
        depth_source, depth_driving = self.depth(source), self.depth(driving)
        kp_source = self.keypoints(source, depth_source)
        kp_driving = self.keypoints(driving, depth_driving)
        generated = self.generator(
            source, kp_source=kp_source, kp_driving=kp_driving, source_depth=depth_source
        )
        generated.update({"kp_source": kp_source, "kp_driving": kp_driving})
        weights = self.loss_weights
        losses = keypoint_gan_losses(self, driving, generated, self.keypoints)
        if weights.get("kp_distance", 0):
            losses["kp_distance"] = kp_distance_loss(kp_source, kp_driving, weights["kp_distance"])
        if weights.get("depth_constraint", 0):
            depth_prediction = estimate_depth(
                self.depth_encoder, self.depth_decoder, generated["prediction"]
            )
            losses["depth_constraint"] = (
                weights["depth_constraint"] * torch.abs(depth_driving - depth_prediction).mean()
            )
        return losses, generated

    def discriminator_losses(
        self, batch: dict[str, torch.Tensor], generated: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """Upstream's ``DiscriminatorFullModel.forward`` (LSGAN)."""
        return keypoint_discriminator_losses(self, batch, generated)

    # -- Lightning hooks ------------------------------------------------------------------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Reconstruct ``driving`` from ``source`` (absolute motion); log ``val/l1``."""
        source, driving = batch["source"], batch["driving"]
        depth_source = self.depth(source)
        prediction = self.generator(
            source,
            kp_source=self.keypoints(source, depth_source),
            kp_driving=self.keypoints(driving),
            source_depth=depth_source,
        )["prediction"]
        return log_validation_l1(self, prediction, driving)

    def configure_optimizers(self):
        return gan_optimizer_config(
            [(self.generator, "lr_generator"), (self.kp_detector, "lr_kp_detector")],
            self.discriminator,
            self.train_params,
        )
