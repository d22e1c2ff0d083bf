"""Upstream's Wav2Lip-format checkpoints (Wav2Lip, EmoGen): ``state_dict`` (generator keys
with DataParallel's ``module.`` prefix, stripped as upstream's loaders do), ``optimizer``,
``global_step``, ``global_epoch``; which network a file holds is told by its keys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from talking_heads.models.checkpoints import (
    CheckpointLayoutError,
    read_official,
    strict_state,
    write_lightning_checkpoint,
)
from talking_heads.models.lipsync.networks import SyncNetColor, VisualQualityDisc

#: what each kind of file is, in words (for errors)
KIND_NAMES = {
    "generator": "a Wav2Lip generator (Wav2Lip)",
    "emotion_generator": "an EmoGen generator (Wav2Lip with an emotion encoder)",
    "expert": "the SyncNet_color lip-sync expert",
    "disc": "the Wav2Lip_disc_qual visual-quality discriminator",
}
#: upstream's file names of the expert and the discriminator, read beside a generator file
EXPERT_FILE = "lipsync_expert.pth"
DISC_FILE = "visual_quality_disc.pth"


def strip_module(state: Mapping[str, Any]) -> dict[str, Any]:
    """Keys without DataParallel's ``module.`` (upstream ``k.replace('module.', '')``)."""
    return {k.replace("module.", ""): v for k, v in state.items()}


def layout_kind(state: Mapping[str, Any]) -> str | None:
    """Which Wav2Lip-format network a state dict holds, or ``None``."""
    keys = set(strip_module(state))
    if "emotion_encoder.0.weight" in keys:
        return "emotion_generator"
    if any(k.startswith("face_decoder_blocks.") for k in keys):
        return "generator"
    if "binary_pred.0.weight" in keys:
        return "disc"
    if any(k.startswith("face_encoder.") for k in keys) and any(
        k.startswith("audio_encoder.") for k in keys
    ):
        return "expert"
    return None


def wav2lip_state(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``state_dict`` of a Wav2Lip-format file (not one of our Lightning checkpoints)."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, Mapping) or "pytorch-lightning_version" in checkpoint:
        return None
    return dict(state)


def read_wav2lip_file(path: Path | str, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file and its stripped state dict, which must hold a network of ``kind``; another
    kind is a :class:`CheckpointLayoutError` saying what the file holds."""
    path = Path(path)
    checkpoint = read_official(path)
    state = wav2lip_state(checkpoint)
    if state is None:
        raise CheckpointLayoutError(
            f"{path.name}: no 'state_dict' in upstream's Wav2Lip layout "
            f"(it holds {sorted(checkpoint)[:8]})"
        )
    found = layout_kind(state)
    if found != kind:
        held = KIND_NAMES.get(found or "", "no Wav2Lip-format network")
        raise CheckpointLayoutError(f"{path.name} holds {held}, not {KIND_NAMES[kind]}")
    return checkpoint, strip_module(state)


def sibling_states(path: Path, width: int) -> dict[str, dict[str, torch.Tensor]]:
    """The expert and discriminator files upstream releases beside the generators, when they
    are in the same folder, each checked key by key."""
    found: dict[str, dict[str, torch.Tensor]] = {}
    for name, file, kind, build in (
        ("expert", EXPERT_FILE, "expert", SyncNetColor),
        ("disc", DISC_FILE, "disc", VisualQualityDisc),
    ):
        sibling = path.parent / file
        if sibling.is_file() and sibling != path:
            _, state = read_wav2lip_file(sibling, kind)
            found[name] = strict_state(build(width), state, network=name, source=sibling.name)
    return found


def import_generator(
    path: Path | str,
    out: Path | str,
    model_cfg: Mapping[str, Any],
    *,
    kind: str,
    method: str,
    build: Any,
) -> Path:
    """An upstream generator file (``kind``) → our checkpoint with the experiment's model
    config; the expert and discriminator files beside it are imported too."""
    from talking_heads.models.lipsync.training import DEFAULT_EXPERT, DEFAULT_TRAIN

    path = Path(path)
    checkpoint, state = read_wav2lip_file(path, kind)
    width = int(model_cfg.get("width", 1))
    networks = {
        "generator": strict_state(build(width), state, network="generator", source=path.name)
    }
    networks.update(sibling_states(path, width))
    expert = {**DEFAULT_EXPERT, **dict(model_cfg.get("expert") or {})}
    if "expert" in networks:
        expert["checkpoint"] = None
        expert["steps"] = 0
    hyper_parameters = {
        "width": width,
        "emotions": int(model_cfg.get("emotions", 0)),
        "expert": expert,
        "train": {**DEFAULT_TRAIN, **dict(model_cfg.get("train") or {})},
        "resolution": int(model_cfg.get("resolution", 96)),
    }
    epoch = checkpoint.get("global_epoch")
    return write_lightning_checkpoint(
        out, networks, hyper_parameters, official=path, method=method, epoch=epoch
    )
