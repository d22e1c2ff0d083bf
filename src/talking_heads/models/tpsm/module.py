"""TPSM training as a LightningModule (Thin-Plate-Spline-Motion-Model ``train.py``,
``train_avd.py`` and ``modules/model.py``).

Stage ``reconstruction`` (upstream ``run.py --mode train``): the keypoint detector, the dense
motion network, the inpainting network and (``common_params.bg``) the background motion
predictor reconstruct the driving frame from the source, with upstream's
``GeneratorFullModel`` losses:

- the multi-scale VGG19 perceptual loss on an anti-aliased image pyramid
  (:func:`talking_heads.models.motion.losses.perceptual_loss`);
- keypoint equivariance under a random affine + TPS warp (:class:`RandomTPS`, values only);
- the warp loss: L1 between the driving frame's occluded encoder features and the warped,
  occluded source features (gradient through the flow only);
- the background loss |I − A(src→drv)·A(drv→src)| once ``epoch ≥ bg_start``;
- TPS dropout in the contribution-map softmax while ``epoch < dropout_epoch``, with
  p = min(epoch / dropout_inc_epoch · dropout_maxp + dropout_startp, dropout_maxp).

No GAN. Adam (β = 0.5, 0.999, weight decay 1e-4, ``lr_generator``), MultiStepLR (γ = 0.1)
stepped per epoch on ``epoch_milestones``; before each step the gradients of the keypoint
detector, the dense motion network and the background predictor are clipped, network by
network, to an infinity norm of 10 (:data:`GRAD_CLIP_MAX_NORM`, hard-coded upstream); the
inpainting network's are not.

Stage ``avd`` (upstream ``run.py --mode train_avd``): the AVD network learns to rebuild the
driving keypoints from their randomly rescaled version (pose) and the source's keypoints
(identity), ``lambda_shift``·L1; Adam (β = 0.5, 0.999, ``train_avd_params.lr``, no weight
decay) over the AVD network only. As upstream, the frozen keypoint detector runs under
``no_grad`` but in training mode (its BatchNorm running statistics keep moving). The
reconstruction-stage weights come from ``init_checkpoint`` (one of our checkpoints, e.g. the
reconstruction run's ``last.ckpt`` or an imported official file), loaded when a fit starts
without resuming.

Deviations: upstream has two Adams with identical settings (one for the background predictor,
stepped only from ``bg_start``); here one Adam holds both as two parameter groups. Adam and
its weight decay are element-wise and skip parameters without gradients, and the background
predictor has none before ``bg_start``, so the updates are the same, as is the learning-rate
schedule. Upstream steps the AVD scheduler with ``scheduler.step(epoch)``, which applies each
decay one epoch after its milestone; our per-epoch MultiStepLR uses the milestones + 1 to give
the same learning rate in every epoch. ``perceptual_pretrained=False`` uses a random VGG19
(offline demos; see :func:`~talking_heads.models.motion.blocks.load_vgg19`). Our checkpoints
always hold the AVD network (upstream's ``demo.py`` builds it in every mode; it is untrained
until stage ``avd``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch.nn.utils import clip_grad_norm_

from talking_heads.models.motion import losses as L
from talking_heads.models.motion.avd import (
    TwoStageMotionLightning,
    avd_optimizer_config,
    avd_validation_step,
    random_scale_matrix,
)
from talking_heads.models.motion.blocks import ImagePyramide
from talking_heads.models.motion.training import (
    BETAS,
    load_init_checkpoint,
    log_training_losses,
    log_validation_l1,
    multistep_config,
)
from talking_heads.models.tpsm.networks import Keypoints, RandomTPS, build_networks

#: upstream ``train.py`` clips these networks' gradients to this infinity norm
GRAD_CLIP_MAX_NORM = 10.0


def dropout_probability(train_params: Mapping[str, Any], epoch: int) -> float | None:
    """The TPS-dropout probability of ``epoch`` (upstream's formula), ``None`` once
    ``epoch ≥ dropout_epoch``."""
    if epoch >= train_params["dropout_epoch"]:
        return None
    p = (
        epoch / train_params["dropout_inc_epoch"] * train_params["dropout_maxp"]
        + train_params["dropout_startp"]
    )
    return min(p, train_params["dropout_maxp"])


def equivariance_loss(
    kp_detector: torch.nn.Module,
    driving: torch.Tensor,
    kp_driving: Keypoints,
    transform_params: Mapping[str, Any],
    weight: float,
) -> torch.Tensor:
    """w · mean|kp(y) − T(kp(T-warped y))| for a random :class:`RandomTPS` T."""
    transform = RandomTPS(driving.shape[0], device=driving.device, **transform_params)
    transformed_kp = kp_detector(transform.transform_frame(driving))
    warped = transform.warp_coordinates(transformed_kp["fg_kp"])
    return weight * torch.abs(kp_driving["fg_kp"] - warped).mean()


def warp_loss(
    driving_features: list[torch.Tensor], warped_features: list[torch.Tensor], weight: float
) -> torch.Tensor:
    """w · Σ_levels mean|driving features − warped source features| (finest first vs coarsest
    first, as upstream pairs them)."""
    total = sum(
        torch.abs(encoded - warped_features[-i - 1]).mean()
        for i, encoded in enumerate(driving_features)
    )
    return weight * total


def background_loss(bg_param: torch.Tensor, bg_param_reverse: torch.Tensor, weight: float):
    """w · mean|I − A(src→drv) · A(drv→src)|."""
    value = torch.matmul(bg_param, bg_param_reverse)
    eye = torch.eye(3, dtype=value.dtype, device=value.device).view(1, 3, 3)
    return weight * torch.abs(eye - value).mean()


def random_scale(kp: Keypoints, scale: float) -> Keypoints:
    """Keypoints scaled by a random diagonal diag(U(1 − s, 1 + s)²) per sample (upstream
    ``train_avd.random_scale``; draws from torch's global CPU generator)."""
    fg_kp = kp["fg_kp"]
    theta = random_scale_matrix(fg_kp, scale)
    return {"fg_kp": torch.matmul(theta, fg_kp.unsqueeze(-1)).squeeze(-1)}


class TPSMLightning(TwoStageMotionLightning):
    """TPSM: keypoint detector + dense motion + inpainting (+ background predictor, AVD).

    ``model_params``, ``train_params`` and ``train_avd_params`` are laid out as upstream's YAML
    (``config/vox-256.yaml``). ``stage`` picks the trained part
    (:data:`~talking_heads.models.motion.avd.STAGES`);
    ``init_checkpoint`` is one of our checkpoints whose weights start a fit.
    ``perceptual_pretrained`` as in :class:`~talking_heads.models.fomm.module.FOMMLightning`.
    Batches are dicts with ``source`` and ``driving`` float tensors ``(B, 3, H, W)`` in [0, 1].
    """

    def build(self, model_params: dict) -> None:
        """Upstream's networks from ``model_params``."""
        networks = build_networks(model_params)
        self.inpainting_network = networks["inpainting_network"]
        self.kp_detector = networks["kp_detector"]
        self.dense_motion_network = networks["dense_motion_network"]
        self.bg_predictor = networks.get("bg_predictor")
        self.avd_network = networks["avd_network"]
        self.pyramid = ImagePyramide(self.scales, self.inpainting_network.num_channels)

    def uses_background(self, epoch: int) -> bool:
        """Whether the background motion is predicted in ``epoch`` (upstream's ``bg_start``)."""
        return self.bg_predictor is not None and epoch >= self.train_params["bg_start"]

    # -- losses ---------------------------------------------------------------------------
    def reconstruction_losses(
        self, batch: dict[str, torch.Tensor], epoch: int
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Upstream's ``GeneratorFullModel.forward(x, epoch)``: weighted losses and outputs."""
        source, driving = batch["source"], batch["driving"]
        weights = self.loss_weights
        kp_source = self.kp_detector(source)
        kp_driving = self.kp_detector(driving)
        bg_param = self.bg_predictor(source, driving) if self.uses_background(epoch) else None
        dropout_p = dropout_probability(self.train_params, epoch)
        dense_motion = self.dense_motion_network(
            source_image=source,
            kp_driving=kp_driving,
            kp_source=kp_source,
            bg_param=bg_param,
            dropout_flag=dropout_p is not None,
            dropout_p=dropout_p or 0.0,
        )
        generated = self.inpainting_network(source, dense_motion)
        generated.update({"kp_source": kp_source, "kp_driving": kp_driving})

        losses: dict[str, torch.Tensor] = {}
        vgg = self.vgg
        if vgg is not None:
            losses["perceptual"] = L.perceptual_loss(
                vgg,
                self.pyramid(generated["prediction"]),
                self.pyramid(driving),
                self.scales,
                weights["perceptual"],
            )
        if weights["equivariance_value"] != 0:
            losses["equivariance_value"] = equivariance_loss(
                self.kp_detector,
                driving,
                kp_driving,
                self.train_params["transform_params"],
                weights["equivariance_value"],
            )
        if weights["warp_loss"] != 0:
            encoded = self.inpainting_network.encode_driving(driving, generated["occlusion_map"])
            losses["warp_loss"] = warp_loss(
                encoded, generated["warped_encoder_maps"], weights["warp_loss"]
            )
        if bg_param is not None and weights["bg"] != 0:
            losses["bg"] = background_loss(
                bg_param, self.bg_predictor(driving, source), weights["bg"]
            )
        return losses, generated

    def avd_losses(
        self, batch: dict[str, torch.Tensor], scale: float | None = None
    ) -> dict[str, torch.Tensor]:
        """Upstream ``train_avd``: rebuild the driving keypoints from their rescaled version
        (pose) and the source's (identity); ``scale`` default ``random_scale``."""
        params = self.train_avd_params
        scale = params["random_scale"] if scale is None else scale
        with torch.no_grad():
            kp_source = self.kp_detector(batch["source"])
            kp_driving_gt = self.kp_detector(batch["driving"])
            kp_driving_random = random_scale(kp_driving_gt, scale) if scale else kp_driving_gt
        rec = self.avd_network(kp_source, kp_driving_random)
        value = torch.abs(kp_driving_gt["fg_kp"] - rec["fg_kp"]).mean()
        return {"rec_kp": params["lambda_shift"] * value}

    # -- Lightning hooks ------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Load ``init_checkpoint``'s weights unless the fit resumes from a checkpoint."""
        load_init_checkpoint(self)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.stage == "avd":
            losses = self.avd_losses(batch)
        else:
            losses, _ = self.reconstruction_losses(batch, self.current_epoch)
        return log_training_losses(self, losses, batch["source"].shape[0])

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Upstream's per-network infinity-norm clipping (after AMP unscaling)."""
        if self.stage != "reconstruction":
            return
        networks = [self.kp_detector, self.dense_motion_network]
        if self.bg_predictor is not None:
            networks.append(self.bg_predictor)
        for network in networks:
            clip_grad_norm_(network.parameters(), max_norm=GRAD_CLIP_MAX_NORM, norm_type=math.inf)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Reconstruct ``driving`` from ``source`` as upstream's ``reconstruction.py`` (with
        the background motion when there is a background predictor); log ``val/l1`` (stage
        ``avd``: the AVD L1 without rescaling, ``val/avd_l1``)."""
        if self.stage == "avd":
            return avd_validation_step(self, batch)
        source, driving = batch["source"], batch["driving"]
        bg_param = self.bg_predictor(source, driving) if self.bg_predictor is not None else None
        dense_motion = self.dense_motion_network(
            source_image=source,
            kp_driving=self.kp_detector(driving),
            kp_source=self.kp_detector(source),
            bg_param=bg_param,
        )
        prediction = self.inpainting_network(source, dense_motion)["prediction"]
        return log_validation_l1(self, prediction, driving)

    def configure_optimizers(self):
        if self.stage == "avd":
            return avd_optimizer_config(self.avd_network, self.train_avd_params)
        lr = self.train_params["lr_generator"]
        groups = [
            {
                "params": [
                    *self.inpainting_network.parameters(),
                    *self.dense_motion_network.parameters(),
                    *self.kp_detector.parameters(),
                ]
            }
        ]
        if self.bg_predictor is not None:
            groups.append({"params": list(self.bg_predictor.parameters())})
        optimizer = torch.optim.Adam(groups, lr=lr, betas=BETAS, weight_decay=1e-4)
        return multistep_config(optimizer, self.train_params["epoch_milestones"])
