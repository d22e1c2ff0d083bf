"""Official first-order-model checkpoints: ``vox-cpk.pth.tar``, ``vox-adv-cpk.pth.tar`` and
``*-checkpoint.pth.tar``.

Upstream's ``Logger.save_cpk`` stores ``generator``, ``kp_detector`` and ``discriminator``
state dicts (plus optimiser states and ``epoch``). Our networks keep upstream's parameter
names, so every key maps to itself; the layout checks cover the anti-alias ``down.weight``
buffers, BatchNorm running statistics, the padding-0 keypoint head and the discriminator's
``discs.1`` / spectral-norm (``weight_orig``, ``weight_u``, ``weight_v``) keys. vox-cpk pairs
with the ``fomm_vox256`` experiment, vox-adv-cpk (keypoint-conditioned discriminator without
spectral norm) with ``fomm_vox256_adv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talking_heads.models.checkpoints import import_networks
from talking_heads.models.fomm.networks import build_networks
from talking_heads.models.motion.checkpoint import import_hyper_parameters, read_official_file

NETWORKS = ("kp_detector", "generator", "discriminator")


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert an official FOMM checkpoint to ours; ``model_cfg`` is the experiment's ``model``
    config (``model_params``, ``train_params``, ``resolution``, ``perceptual_pretrained``)."""
    path, checkpoint, model_params = read_official_file(path, model_cfg)
    built = dict(zip(NETWORKS, build_networks(model_params), strict=True))
    hyper_parameters = import_hyper_parameters(model_cfg, model_params)
    return import_networks(
        path, out, checkpoint, built, hyper_parameters, method="fomm", epoch=checkpoint.get("epoch")
    )
