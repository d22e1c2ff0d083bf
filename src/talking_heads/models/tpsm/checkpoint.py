"""Official Thin-Plate-Spline-Motion-Model checkpoints: ``vox.pth.tar`` (and the other released
files) and ``{epoch:08d}-checkpoint.pth.tar``.

Upstream's ``Logger.save_cpk`` stores the ``inpainting_network``, ``dense_motion_network`` and
``kp_detector`` state dicts with ``optimizer`` and ``epoch``; from ``bg_start`` on also
``bg_predictor`` and ``optimizer_bg_predictor``; after AVD training ``avd_network`` and
``optimizer_avd``. Our networks keep upstream's parameter names, so every key maps to itself
and is checked strictly (keys and shapes). As upstream's ``Logger.load_cpk`` and ``demo.py``,
a file without ``bg_predictor`` (an early checkpoint) or ``avd_network`` (no AVD training)
still imports: our checkpoint then holds freshly initialised ones (with a warning). A file's
``bg_predictor`` with a configuration without background motion (``bg: false``) is an error:
it would be dropped silently otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talking_heads.models.checkpoints import CheckpointLayoutError, import_networks
from talking_heads.models.motion.checkpoint import import_hyper_parameters, read_official_file
from talking_heads.models.tpsm.networks import build_networks

#: networks an official file must hold (upstream writes the others only in later stages)
REQUIRED = ("inpainting_network", "dense_motion_network", "kp_detector")
OPTIONAL = ("bg_predictor", "avd_network")


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert an official TPSM checkpoint to ours; ``model_cfg`` is the experiment's ``model``
    config (``model_params``, ``train_params``, ``train_avd_params``, ``resolution``,
    ``perceptual_pretrained``)."""
    path, checkpoint, model_params = read_official_file(path, model_cfg)
    built = build_networks(model_params)
    if "bg_predictor" in checkpoint and "bg_predictor" not in built:
        raise CheckpointLayoutError(
            f"{path.name}: holds a 'bg_predictor' but the configuration has no background "
            "motion (model_params.common_params.bg is false)"
        )
    return import_networks(
        path,
        out,
        checkpoint,
        built,
        import_hyper_parameters(model_cfg, model_params, avd=True),
        method="tpsm",
        epoch=checkpoint.get("epoch"),
        optional=OPTIONAL,
    )
