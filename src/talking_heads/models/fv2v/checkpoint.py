"""Official face-vid2vid checkpoints (``*-checkpoint.pth.tar``, the released Vox-256 files).

Upstream's ``Logger.save_cpk`` stores the ``generator``, ``discriminator``, ``kp_detector`` and
``he_estimator`` state dicts, the four optimiser states and ``epoch``. Our networks keep the
official parameter names, so every key maps to itself and is checked strictly (keys and shapes).
The generator must be the experiment's ``generator_type``: ``spade`` (``demo.py --gen spade``,
the Vox-256-New checkpoint, ``fv2v_vox256``) or ``original`` (``--gen original``); the error
names the other type when the file holds it.

As upstream's ``Logger.load_cpk``, a file without a ``discriminator`` still imports: our
checkpoint then holds a freshly initialised discriminator (reported with a warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from talking_heads.models.checkpoints import CheckpointLayoutError, import_networks
from talking_heads.models.fv2v.networks import build_networks
from talking_heads.models.motion.checkpoint import import_hyper_parameters, read_official_file

NETWORKS = ("kp_detector", "he_estimator", "generator", "discriminator")
#: networks an official file must hold (upstream tolerates a missing discriminator)
REQUIRED = ("kp_detector", "he_estimator", "generator")


def _generator_type_of(state: Mapping[str, Any]) -> str | None:
    """``spade``/``original`` from a generator state dict's keys, ``None`` if neither."""
    if any(key.startswith("decoder.G_middle_") for key in state):
        return "spade"
    if any(key.startswith("resblocks_2d.") for key in state):
        return "original"
    return None


def _check_generator_type(
    name: str, official: Mapping[str, Any], generator_type: str, path: Path
) -> None:
    """An error naming the other type when the file's generator is not ``generator_type``."""
    if name != "generator":
        return
    held = _generator_type_of(official)
    if held is not None and held != generator_type:
        raise CheckpointLayoutError(
            f"{path.name}: its generator is the {held!r} one (--gen {held}), the "
            f"experiment builds the {generator_type!r} one (model.generator_type)"
        )


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert an official face-vid2vid checkpoint to ours; ``model_cfg`` is the experiment's
    ``model`` config (``model_params``, ``train_params``, ``generator_type``, ``resolution``,
    ``perceptual_pretrained``)."""
    path, checkpoint, model_params = read_official_file(path, model_cfg)
    generator_type = str(model_cfg.get("generator_type", "spade"))
    built = dict(zip(NETWORKS, build_networks(model_params, generator_type), strict=True))
    return import_networks(
        path,
        out,
        checkpoint,
        built,
        import_hyper_parameters(model_cfg, model_params, generator_type=generator_type),
        method="fv2v",
        epoch=checkpoint.get("epoch"),
        optional=[n for n in NETWORKS if n not in REQUIRED],
        check=lambda name, official: _check_generator_type(name, official, generator_type, path),
    )
