"""MRAA training as a LightningModule (articulated-animation ``train.py``, ``train_avd.py`` and
``modules/model.py``).

Stage ``reconstruction`` (upstream ``run.py --mode train``): the region predictor, the
background motion predictor and the generator reconstruct the driving frame from the source,
with upstream's ``ReconstructionModel`` losses: the multi-scale VGG19 perceptual loss on an
anti-aliased image pyramid (:func:`talking_heads.models.motion.losses.perceptual_loss`) and the
equivariance of the region shifts and affines under a random affine + TPS warp
(:func:`equivariance_losses`); no GAN. One Adam (β = 0.5, 0.999, ``lr``) over the three
networks, MultiStepLR (γ = 0.1) stepped per epoch on ``epoch_milestones``.

Stage ``avd`` (upstream ``run.py --mode train_avd``): the AVD network learns to rebuild the
driving frame's region parameters from its randomly rescaled version (pose) and the source's
(identity), L1 on shifts and affines; Adam (β = 0.5, 0.999) over the AVD network only with
``train_avd_params``. As upstream, the frozen region predictor runs under ``no_grad`` but in
training mode, so its BatchNorm layers normalise with batch statistics and keep updating their
running statistics (upstream never calls ``region_predictor.eval()`` in ``train_avd``). The
reconstruction-stage weights come from ``init_checkpoint`` (one of our checkpoints, e.g. the
reconstruction run's ``last.ckpt`` or an imported official file), loaded when a fit starts
without resuming.

Deviations: upstream steps the AVD scheduler with ``scheduler.step(epoch)`` at the end of
epoch ``epoch``, which applies each decay one epoch after the milestone; our per-epoch
MultiStepLR uses the milestones + 1 to give the same learning rate in every epoch.
``perceptual_pretrained=False`` uses a random VGG19 (offline demos; see
:func:`~talking_heads.models.motion.blocks.load_vgg19`). Our checkpoints always hold the AVD
network (upstream's ``run.py`` builds it in every mode; it is untrained until stage ``avd``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from talking_heads.models.motion import losses as L
from talking_heads.models.motion.avd import (
    TwoStageMotionLightning,
    avd_optimizer_config,
    avd_validation_step,
    random_scale_matrix,
)
from talking_heads.models.motion.blocks import ImagePyramide, Transform
from talking_heads.models.motion.training import (
    BETAS,
    load_init_checkpoint,
    log_training_losses,
    log_validation_l1,
    multistep_config,
)
from talking_heads.models.mraa.networks import RegionParams, build_networks, inverse


def equivariance_losses(
    region_predictor: torch.nn.Module,
    driving: torch.Tensor,
    driving_region_params: RegionParams,
    transform_params: Mapping[str, Any],
    weight_shift: float,
    weight_affine: float,
    revert_axis_swap: bool,
) -> dict[str, torch.Tensor]:
    """Region equivariance under a random warp T of the driving frame (upstream's
    ``ReconstructionModel``).

    Shift: mean|μ(y) − T(μ(T-warped y))|; affine: mean|I − A(y)⁻¹·(∇T·A(warped y))|, the
    product sign-normalised by its (0, 0) entry when ``revert_axis_swap``. The warp draws from
    torch's global CPU generator, as upstream.
    """
    losses: dict[str, torch.Tensor] = {}
    if weight_shift + weight_affine == 0:
        return losses
    transform = Transform(driving.shape[0], device=driving.device, **transform_params)
    transformed = region_predictor(transform.transform_frame(driving))
    if weight_shift != 0:
        value = torch.abs(
            driving_region_params["shift"] - transform.warp_coordinates(transformed["shift"])
        ).mean()
        losses["equivariance_shift"] = weight_shift * value
    if weight_affine != 0:
        affine_transformed = torch.matmul(
            transform.jacobian(transformed["shift"]), transformed["affine"]
        )
        value = torch.matmul(inverse(driving_region_params["affine"]), affine_transformed)
        if revert_axis_swap:
            value = value * torch.sign(value[:, :, 0:1, 0:1])
        eye = torch.eye(2, dtype=value.dtype, device=value.device).view(1, 1, 2, 2)
        losses["equivariance_affine"] = weight_affine * torch.abs(eye - value).mean()
    return losses


def random_scale(region_params: RegionParams, scale: float) -> RegionParams:
    """Shifts and affines scaled by a random diagonal diag(U(1 − s, 1 + s)²) per sample
    (upstream ``train_avd.random_scale``; draws from torch's global CPU generator)."""
    shift = region_params["shift"]
    theta = random_scale_matrix(shift, scale)
    return {
        "shift": torch.matmul(theta, shift.unsqueeze(-1)).squeeze(-1),
        "affine": torch.matmul(theta, region_params["affine"]),
    }


class MRAALightning(TwoStageMotionLightning):
    """MRAA: region predictor + background motion predictor + generator (+ AVD network).

    ``model_params``, ``train_params`` and ``train_avd_params`` are laid out as upstream's YAML
    (``config/vox256.yaml``). ``stage`` picks the trained part
    (:data:`~talking_heads.models.motion.avd.STAGES`);
    ``init_checkpoint`` is one of our checkpoints whose weights start a fit (stage ``avd``
    starts from the reconstruction stage). ``perceptual_pretrained`` as in
    :class:`~talking_heads.models.fomm.module.FOMMLightning`. Batches are dicts with ``source``
    and ``driving`` float tensors ``(B, 3, H, W)`` in [0, 1].
    """

    def build(self, model_params: dict) -> None:
        """Upstream's networks from ``model_params``."""
        networks = build_networks(model_params)
        self.generator = networks["generator"]
        self.region_predictor = networks["region_predictor"]
        self.bg_predictor = networks["bg_predictor"]
        self.avd_network = networks["avd_network"]
        self.pyramid = ImagePyramide(self.scales, self.generator.num_channels)
        self.revert_axis_swap = bool(model_params.get("revert_axis_swap", True))

    # -- losses ---------------------------------------------------------------------------
    def reconstruction_losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Upstream's ``ReconstructionModel.forward``: weighted losses and generated outputs."""
        source, driving = batch["source"], batch["driving"]
        source_region_params = self.region_predictor(source)
        driving_region_params = self.region_predictor(driving)
        bg_params = self.bg_predictor(source, driving)
        generated = self.generator(
            source,
            source_region_params=source_region_params,
            driving_region_params=driving_region_params,
            bg_params=bg_params,
        )
        generated.update(
            {
                "source_region_params": source_region_params,
                "driving_region_params": driving_region_params,
            }
        )
        losses: dict[str, torch.Tensor] = {}
        vgg = self.vgg
        if vgg is not None:
            losses["perceptual"] = L.perceptual_loss(
                vgg,
                self.pyramid(generated["prediction"]),
                self.pyramid(driving),
                self.scales,
                self.loss_weights["perceptual"],
            )
        losses.update(
            equivariance_losses(
                self.region_predictor,
                driving,
                driving_region_params,
                self.train_params["transform_params"],
                self.loss_weights["equivariance_shift"],
                self.loss_weights["equivariance_affine"],
                self.revert_axis_swap,
            )
        )
        return losses, generated

    def avd_losses(
        self, batch: dict[str, torch.Tensor], scale: float | None = None
    ) -> dict[str, torch.Tensor]:
        """Upstream ``train_avd``: rebuild the driving regions from the rescaled driving
        regions (pose) and the source's (identity); ``scale`` default ``random_scale``."""
        params = self.train_avd_params
        scale = params["random_scale"] if scale is None else scale
        with torch.no_grad():
            id_params = self.region_predictor(batch["source"])
            pose_gt = self.region_predictor(batch["driving"])
            pose = random_scale(pose_gt, scale) if scale else pose_gt
        rec = self.avd_network(id_params, pose)
        return {
            "rec_shift": params["lambda_shift"] * torch.abs(pose_gt["shift"] - rec["shift"]).mean(),
            "rec_affine": params["lambda_affine"]
            * torch.abs(pose_gt["affine"] - rec["affine"]).mean(),
        }

    # -- Lightning hooks ------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Load ``init_checkpoint``'s weights unless the fit resumes from a checkpoint."""
        load_init_checkpoint(self)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.stage == "avd":
            losses = self.avd_losses(batch)
        else:
            losses, _ = self.reconstruction_losses(batch)
        return log_training_losses(self, losses, batch["source"].shape[0])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Reconstruct ``driving`` from ``source`` as upstream's ``reconstruction.py`` (with
        the background motion); log ``val/l1`` (stage ``avd``: the AVD L1 without rescaling,
        ``val/avd_l1``)."""
        if self.stage == "avd":
            return avd_validation_step(self, batch)
        source, driving = batch["source"], batch["driving"]
        prediction = self.generator(
            source,
            source_region_params=self.region_predictor(source),
            driving_region_params=self.region_predictor(driving),
            bg_params=self.bg_predictor(source, driving),
        )["prediction"]
        return log_validation_l1(self, prediction, driving)

    def configure_optimizers(self):
        if self.stage == "avd":
            return avd_optimizer_config(self.avd_network, self.train_avd_params)
        optimizer = torch.optim.Adam(
            [
                *self.generator.parameters(),
                *self.region_predictor.parameters(),
                *self.bg_predictor.parameters(),
            ],
            lr=self.train_params["lr"],
            betas=BETAS,
        )
        return multistep_config(optimizer, self.train_params["epoch_milestones"])
