"""Official articulated-animation checkpoints: ``vox256.pth`` (and the other released files),
``{epoch:08d}-cpk-reconstruction.pth`` and ``{epoch:08d}-cpk-avd.pth``.

Upstream's ``Logger.save_cpk`` stores the ``generator``, ``region_predictor`` and
``bg_predictor`` state dicts with ``optimizer_reconstruction`` and ``epoch_reconstruction``;
after AVD training also ``avd_network``, ``optimizer_avd`` and ``epoch_avd`` (the released
files are of this kind). Our networks keep upstream's parameter names, so every key maps to
itself and is checked strictly (keys and shapes). As upstream's ``Logger.load_cpk`` and
``demo.py``, a file without ``avd_network`` (a reconstruction-stage checkpoint) still
imports: our checkpoint then holds a freshly initialised AVD network (with a warning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talking_heads.models.checkpoints import import_networks
from talking_heads.models.motion.checkpoint import import_hyper_parameters, read_official_file
from talking_heads.models.mraa.networks import build_networks

NETWORKS = ("generator", "region_predictor", "bg_predictor", "avd_network")
#: networks an official file must hold (upstream's reconstruction stage writes no AVD network)
REQUIRED = ("generator", "region_predictor", "bg_predictor")


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert an official MRAA checkpoint to ours; ``model_cfg`` is the experiment's ``model``
    config (``model_params``, ``train_params``, ``train_avd_params``, ``resolution``,
    ``perceptual_pretrained``)."""
    path, checkpoint, model_params = read_official_file(path, model_cfg)
    return import_networks(
        path,
        out,
        checkpoint,
        build_networks(model_params),
        import_hyper_parameters(model_cfg, model_params, avd=True),
        method="mraa",
        epoch=checkpoint.get("epoch_reconstruction", checkpoint.get("epoch_avd")),
        optional=[n for n in NETWORKS if n not in REQUIRED],
    )
