"""Official DaGAN checkpoints (``DaGAN_vox_adv_256.pth.tar``) plus the face-depth model.

Upstream's ``Logger.save_cpk`` stores the ``generator``, ``kp_detector`` and ``discriminator``
state dicts of DistributedDataParallel-wrapped modules, so every key carries a ``module.``
prefix (``demo.py`` strips it); it also stores three optimiser states and ``epoch``. The
prefix is removed when present (files without it import too) and every key is then checked
strictly against our networks (keys and shapes). As upstream's ``Logger.load_cpk`` tolerates
it, a file without a ``discriminator`` still imports: our checkpoint then holds a freshly
initialised one (reported with a warning).

The depth network is not in that file: upstream's ``demo.py`` reads ``encoder.pth`` and
``depth.pth`` from ``depth/models/weights_19/``. The importer takes them from the experiment's
``model.depth_pretrained`` (``True``: the registered files in the weights directory,
``weights_19/encoder.pth`` and ``weights_19/depth.pth``; a path: a folder holding both), checks
them strictly as well (:func:`~talking_heads.models.dagan.depth.official_depth_states`) and
writes them into our checkpoint as the ``depth_encoder`` and ``depth_decoder`` networks, so
animation and fine-tuning need no other file; ``imported_from["depth"]`` names both files and
their sha256, and the recorded hyper-parameter ``depth_pretrained`` is ``False`` (nothing to
load again).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from talking_heads.config import plain
from talking_heads.manifest import sha256_file
from talking_heads.models.checkpoints import (
    network_state,
    read_official,
    strict_state,
    write_lightning_checkpoint,
)
from talking_heads.models.dagan.depth import build_depth, load_depth_weights, official_depth_states
from talking_heads.models.dagan.networks import build_networks
from talking_heads.models.motion.checkpoint import import_hyper_parameters
from talking_heads.utils.atomic import atomic_path

NETWORKS = ("generator", "kp_detector", "discriminator")
#: networks an official file must hold (upstream tolerates a missing discriminator)
REQUIRED = ("generator", "kp_detector")
DDP_PREFIX = "module."


def strip_ddp_prefix(key: str) -> str:
    """``module.first.conv.weight`` → ``first.conv.weight`` (other keys unchanged)."""
    return key[len(DDP_PREFIX) :] if key.startswith(DDP_PREFIX) else key


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert an official DaGAN checkpoint (and the depth model of ``model_cfg``'s
    ``depth_pretrained``) to ours; ``model_cfg`` is the experiment's ``model`` config."""
    path = Path(path)
    model_params = plain(model_cfg["model_params"])
    depth_pretrained = plain(model_cfg.get("depth_pretrained", True))
    if not depth_pretrained:
        raise ValueError(
            "importing a DaGAN checkpoint needs its depth model: the experiment's "
            "model.depth_pretrained is false (set it to true or to a folder holding "
            "encoder.pth and depth.pth)"
        )
    checkpoint = read_official(path)
    kp_detector, generator, discriminator = build_networks(model_params)
    built = {"generator": generator, "kp_detector": kp_detector, "discriminator": discriminator}
    states: dict[str, dict[str, torch.Tensor]] = {}
    for name in NETWORKS:
        module = built[name]
        if name not in REQUIRED and name not in checkpoint:
            warnings.warn(
                f"{path.name} holds no {name!r}: a freshly initialised one is written",
                RuntimeWarning,
                stacklevel=2,
            )
            states[name] = module.state_dict()
            continue
        states[name] = strict_state(
            module,
            network_state(checkpoint, name, path.name),
            network=name,
            source=path.name,
            rename=strip_ddp_prefix,
        )
    depth_encoder, depth_decoder = build_depth(model_params.get("depth_params"))
    encoder_state, decoder_state, depth_paths = load_depth_weights(
        depth_pretrained, depth_encoder.num_layers
    )
    states.update(
        official_depth_states(
            depth_encoder,
            depth_decoder,
            encoder_state,
            decoder_state,
            source=str(depth_paths[0].parent),
        )
    )
    hyper_parameters = import_hyper_parameters(model_cfg, model_params, depth_pretrained=False)
    epoch = checkpoint.get("epoch")
    written = write_lightning_checkpoint(
        out,
        states,
        hyper_parameters,
        official=path,
        method="dagan",
        epoch=epoch if isinstance(epoch, int) else None,
    )
    ours = torch.load(written, map_location="cpu", weights_only=True)
    ours["imported_from"]["depth"] = {
        part: {"file": str(file), "sha256": sha256_file(file)}
        for part, file in zip(("encoder", "decoder"), depth_paths, strict=True)
    }
    with atomic_path(written) as tmp:
        torch.save(ours, tmp)
    return written
