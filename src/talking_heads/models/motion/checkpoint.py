"""Shared parts of the motion-transfer methods' official-checkpoint importers.

Each method's ``import_official`` reads an upstream file (:func:`read_official_file`), builds
its networks from the experiment's ``model_params`` and writes our Lightning checkpoint with
the hyper-parameters its LightningModule takes (:func:`import_hyper_parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from talking_heads.config import plain
from talking_heads.models.checkpoints import read_official


def read_official_file(
    path: Path | str, model_cfg: Mapping[str, Any]
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """``(path, the official file's contents, model_cfg's model_params as plain values)``."""
    path = Path(path)
    return path, read_official(path), plain(model_cfg["model_params"])


def import_hyper_parameters(
    model_cfg: Mapping[str, Any],
    model_params: dict[str, Any],
    *,
    avd: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """The LightningModule hyper-parameters of an imported checkpoint: ``model_params``,
    ``model_cfg``'s ``train_params`` (and ``train_avd_params`` when ``avd``),
    ``perceptual_pretrained`` (default ``True``) and ``resolution`` (default 256), then
    ``extra``."""
    hyper_parameters = {
        "model_params": model_params,
        "train_params": plain(model_cfg["train_params"]),
    }
    if avd:
        hyper_parameters["train_avd_params"] = plain(model_cfg.get("train_avd_params"))
    hyper_parameters["perceptual_pretrained"] = plain(model_cfg.get("perceptual_pretrained", True))
    hyper_parameters["resolution"] = int(model_cfg.get("resolution", 256))
    return {**hyper_parameters, **extra}
