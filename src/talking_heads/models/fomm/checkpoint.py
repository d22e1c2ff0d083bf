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

from talking_heads.models.checkpoints import import_networks, read_official
from talking_heads.models.fomm.module import plain
from talking_heads.models.fomm.networks import build_networks

NETWORKS = ("kp_detector", "generator", "discriminator")


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert an official FOMM checkpoint to ours; ``model_cfg`` is the experiment's ``model``
    config (``model_params``, ``train_params``, ``resolution``, ``perceptual_pretrained``)."""
    path = Path(path)
    checkpoint = read_official(path)
    model_params = plain(model_cfg["model_params"])
    built = dict(zip(NETWORKS, build_networks(model_params), strict=True))
    hyper_parameters = {
        "model_params": model_params,
        "train_params": plain(model_cfg["train_params"]),
        "perceptual_pretrained": plain(model_cfg.get("perceptual_pretrained", True)),
        "resolution": int(model_cfg.get("resolution", 256)),
    }
    return import_networks(
        path, out, checkpoint, built, hyper_parameters, method="fomm", epoch=checkpoint.get("epoch")
    )
