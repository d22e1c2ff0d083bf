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

from talking_heads.models.checkpoints import (
    CheckpointLayoutError,
    import_networks,
    read_official,
)
from talking_heads.models.fomm.module import plain
from talking_heads.models.tpsm.networks import build_networks

#: networks an official file must hold (upstream writes the others only in later stages)
REQUIRED = ("inpainting_network", "dense_motion_network", "kp_detector")
OPTIONAL = ("bg_predictor", "avd_network")


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert an official TPSM checkpoint to ours; ``model_cfg`` is the experiment's ``model``
    config (``model_params``, ``train_params``, ``train_avd_params``, ``resolution``,
    ``perceptual_pretrained``)."""
    path = Path(path)
    checkpoint = read_official(path)
    model_params = plain(model_cfg["model_params"])
    built = build_networks(model_params)
    if "bg_predictor" in checkpoint and "bg_predictor" not in built:
        raise CheckpointLayoutError(
            f"{path.name}: holds a 'bg_predictor' but the configuration has no background "
            "motion (model_params.common_params.bg is false)"
        )
    hyper_parameters = {
        "model_params": model_params,
        "train_params": plain(model_cfg["train_params"]),
        "train_avd_params": plain(model_cfg.get("train_avd_params")),
        "perceptual_pretrained": plain(model_cfg.get("perceptual_pretrained", True)),
        "resolution": int(model_cfg.get("resolution", 256)),
    }
    return import_networks(
        path,
        out,
        checkpoint,
        built,
        hyper_parameters,
        method="tpsm",
        epoch=checkpoint.get("epoch"),
        optional=OPTIONAL,
    )
