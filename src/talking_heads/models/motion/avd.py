"""Animation via disentanglement (AVD), shared by MRAA and TPSM.

Both official repositories (articulated-animation and Thin-Plate-Spline-Motion-Model) carry the
same AVD design: an identity and a pose MLP encoder (Linear-BatchNorm1d-ReLU, →256→512→1024→
bottleneck) and a decoder (→1024→512→256→input) over the flattened motion description, trained
in a second stage on randomly rescaled driving motion. What differs is the motion description
(MRAA: region shifts and affines, (2 + 4)·K values; TPSM: 5·K thin-plate-spline control points,
2 values each), the bottleneck sizes and the precision handling, which stay in each method's
``AVDNetwork`` subclass of :class:`AVDCore`. The parameter names (``id_encoder``,
``pose_encoder``, ``decoder``) are the official ones.

The Lightning pieces (:class:`TwoStageMotionLightning`, :func:`avd_validation_step`,
:func:`avd_optimizer_config`) and :class:`AVDAnimator` hold the AVD training stage and the
``avd``/``reconstruction`` animation modes the two methods share.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from talking_heads.models.motion.animate import MotionAnimator
from talking_heads.models.motion.training import frozen_on_device, multistep_config


def avd_mlp(sizes: Sequence[int], inplace: bool) -> nn.Sequential:
    """Linear-BatchNorm1d-ReLU blocks over ``sizes``, ending in a plain Linear (upstream's AVD
    layout: Linear at indices 0, 3, 6 ..., BatchNorm1d at 1, 4 ...)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(n_out), nn.ReLU(inplace=inplace)]
    return nn.Sequential(*layers)


class AVDCore(nn.Module):
    """The AVD encoders and decoder over flattened motion vectors of ``input_size`` values.

    :meth:`decode` maps (identity ``(B, input_size)``, pose ``(B, input_size)``) to the
    reconstructed ``(B, input_size)``; subclasses flatten their motion description into it and
    back.
    """

    def __init__(self, input_size: int, id_bottle_size: int, pose_bottle_size: int) -> None:
        super().__init__()
        self.id_encoder = avd_mlp([input_size, 256, 512, 1024, id_bottle_size], inplace=True)
        self.pose_encoder = avd_mlp([input_size, 256, 512, 1024, pose_bottle_size], inplace=True)
        self.decoder = avd_mlp(
            [pose_bottle_size + id_bottle_size, 1024, 512, 256, input_size], inplace=False
        )

    def decode(self, identity: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """decoder([pose_encoder(pose), id_encoder(identity)]), as upstream concatenates."""
        pose_emb = self.pose_encoder(pose)
        id_emb = self.id_encoder(identity)
        return self.decoder(torch.cat([pose_emb, id_emb], dim=1))


def random_scale_matrix(like: torch.Tensor, scale: float) -> torch.Tensor:
    """Random diagonals diag(U(1 − s, 1 + s)²) ``(B, 1, 2, 2)`` for the batch of ``like``, on its
    device and dtype (upstream ``train_avd.random_scale``; draws from torch's global CPU
    generator)."""
    theta = torch.rand(like.shape[0], 2) * (2 * scale) + (1 - scale)
    return torch.diag_embed(theta).unsqueeze(1).to(like.device, like.dtype)


# -- Lightning ------------------------------------------------------------------------------
#: the training stages of MRAA and TPSM: the motion networks, then the AVD network
STAGES = ("reconstruction", "avd")


def check_stage(stage: str, train_avd_params: Mapping[str, Any] | None) -> None:
    """Raise ``ValueError`` unless ``stage`` is one of :data:`STAGES` (``avd`` needing
    ``train_avd_params``)."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {', '.join(STAGES)}")
    if stage == "avd" and not train_avd_params:
        raise ValueError("stage 'avd' needs train_avd_params")


def avd_validation_step(module: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The AVD stage's validation: ``module.avd_losses`` without rescaling, logged as
    ``val/avd_l1``."""
    value = sum(module.avd_losses(batch, scale=0.0).values())
    module.log("val/avd_l1", value, prog_bar=True, batch_size=batch["source"].shape[0])
    return value


def avd_optimizer_config(avd_network: nn.Module, params: Mapping[str, Any]) -> dict:
    """Upstream ``train_avd``'s Adam (β = 0.5, 0.999) on the AVD network with ``params``'
    ``lr``, decayed ×0.1 one epoch after each of ``epoch_milestones`` (upstream's
    ``scheduler.step(epoch)``)."""
    optimizer = torch.optim.Adam(avd_network.parameters(), lr=params["lr"], betas=(0.5, 0.999))
    return multistep_config(optimizer, [m + 1 for m in params["epoch_milestones"]])


# -- animation ------------------------------------------------------------------------------
class TwoStageMotionLightning(pl.LightningModule):
    """The constructor MRAA's and TPSM's LightningModules share: two training stages
    (:data:`STAGES`), upstream's YAML blocks as arguments, a frozen VGG19 for the
    reconstruction stage's perceptual loss.

    Arguments as :class:`~talking_heads.models.mraa.module.MRAALightning`. The hyperparameters
    are saved as plain Python (:func:`~talking_heads.config.plain`) under the
    argument names, so checkpoints load with ``torch.load(weights_only=True)``. Subclasses
    build their networks in :meth:`build` from upstream's ``model_params``.
    """

    def __init__(
        self,
        model_params: dict,
        train_params: dict,
        perceptual_pretrained: bool | str = True,
        resolution: int = 256,
        train_avd_params: dict | None = None,
        stage: str = "reconstruction",
        init_checkpoint: str | None = None,
    ) -> None:
        from talking_heads.config import plain
        from talking_heads.nets.vgg19 import load_vgg19

        super().__init__()
        check_stage(stage, train_avd_params)
        self.save_hyperparameters(
            {
                "model_params": plain(model_params),
                "train_params": plain(train_params),
                "perceptual_pretrained": plain(perceptual_pretrained),
                "resolution": int(resolution),
                "train_avd_params": plain(train_avd_params),
                "stage": stage,
                "init_checkpoint": plain(init_checkpoint),
            }
        )
        self.stage = stage
        self.train_params = self.hparams.train_params
        self.train_avd_params = self.hparams.train_avd_params
        self.loss_weights = self.train_params["loss_weights"]
        self.scales = list(self.train_params["scales"])
        self.build(self.hparams.model_params)  # before the VGG: the same random draws as upstream
        # the frozen VGG is kept out of the module tree: it is not part of the method's weights
        uses_vgg = stage == "reconstruction" and sum(self.loss_weights["perceptual"]) != 0
        self._vgg = [load_vgg19(self.hparams.perceptual_pretrained)] if uses_vgg else []

    def build(self, model_params: dict) -> None:
        """Create the method's networks as attributes (upstream's names)."""
        raise NotImplementedError

    @property
    def vgg(self) -> nn.Module | None:
        """The perceptual-loss network, on this module's device."""
        return frozen_on_device(self._vgg, self.device)


class AVDAnimator(MotionAnimator):
    """A :class:`MotionAnimator` with upstream's ``avd`` mode and a reconstruction mode.

    While :meth:`animate_avd` or :meth:`reconstruct` runs, ``self._mode`` is ``"avd"`` or
    ``"reconstruction"`` (``None`` otherwise) for :meth:`generate` to read.
    """

    #: the mode :meth:`generate` runs when not the relative/standard pair of flags
    _mode: str | None = None

    @contextlib.contextmanager
    def _running(self, mode: str) -> Iterator[None]:
        self._mode = mode
        try:
            yield
        finally:
            self._mode = None

    def animate_avd(
        self,
        source: torch.Tensor,
        driving: torch.Tensor,
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
        reuse_source: bool = True,
    ) -> torch.Tensor:
        """Upstream's ``--mode avd``: the AVD network's motion from the source's (identity)
        and each driving frame's (pose); ``(T, 3, H, W)`` on the CPU."""
        with self._running("avd"):
            return self.animate(
                source,
                driving,
                relative=False,
                adapt_scale=False,
                batch_size=batch_size,
                device=device,
                amp=amp,
                reuse_source=reuse_source,
            )

    def reconstruct(
        self,
        video: torch.Tensor,
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """Upstream's ``reconstruction.py``: frame 0 is the source, absolute motion, and the
        background motion of every (frame 0, frame t) pair where there is a predictor."""
        with self._running("reconstruction"):
            return super().reconstruct(video, batch_size=batch_size, device=device, amp=amp)
