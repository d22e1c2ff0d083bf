"""Pretrained third-party networks, one module per network, shared by several stages.

Each module rebuilds an upstream network with its parameter names, so the published file
(registered in :data:`talking_heads.weights.WEIGHTS`, sha256-checked, read from the weights
directory with ``torch.load(weights_only=True)``) loads strictly. Network, file, users:

- :mod:`.s3fd`: S3FD face detector, ``s3fd-619a316812.pth``; preprocessing (detector ``sfd``),
  AKD, the best-frame search of animation.
- :mod:`.fan`: 2D-FAN-4 landmarks, ``2DFAN4-11f355bf06.pth.tar``; preprocessing (``fan68``),
  AKD, CSIM with ``landmarks="fan68"``, the best-frame search.
- :mod:`.hopenet`: Hopenet head pose, ``hopenet_robust_alpha1.pkl``; face-vid2vid training
  (headpose loss), head-motion diversity and Beat Align.
- :mod:`.vgg19`: VGG19 features, ``vgg19-dcbb9e9d.pth``; the perceptual loss of FOMM, MRAA,
  TPSM, DaGAN and face-vid2vid training.
- :mod:`.syncnet`: SyncNet, ``syncnet_v2.model``; LSE-D / LSE-C.
- :mod:`.arcface`: ArcFace iresnet, ``ms1mv3_arcface_r100_fp16/backbone.pth`` (and the other
  registered model-zoo folders); CSIM.
- :mod:`.openface`: OpenFace nn4.small2.v1, ``openface.pth``; AED.
- :mod:`.inception`: pytorch-fid's FID Inception, ``pt_inception-2015-12-05-6726825d.pth``;
  FID and IS.
- :mod:`.lpips`: LPIPS v0.1 AlexNet, ``alexnet-owt-7be5be79.pth`` (heads: torchmetrics'
  ``alex.pth``); LPIPS.

The modules import only torch (torchvision / pytorch-fid where upstream builds on them),
:mod:`talking_heads.weights` and :mod:`talking_heads.utils`. Importing this package imports
torch, so preprocessing imports it lazily, when a torch backend is built.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from talking_heads.weights import WEIGHTS, load_state_dict, resolve


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; an unavailable CUDA device is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but no CUDA device is available")
    return resolved


def load_pretrained(build: Callable[[], nn.Module], weights: str) -> nn.Module:
    """``build()`` with the registered ``weights`` loaded strictly, in eval mode, on the CPU.

    The file is resolved first (a missing file raises
    :class:`~talking_heads.weights.MissingWeightsError` naming file, URL and folder before
    anything is built), sha256-verified and read with ``torch.load(weights_only=True)``.
    A state dict with missing or unexpected keys raises a RuntimeError naming the file.
    """
    path = resolve(weights)
    state = load_state_dict(path)
    module = build()
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        spec = WEIGHTS.get(weights)
        raise RuntimeError(
            f"{path} does not match the {type(module).__name__} layout of {spec.filename}: {error}"
        ) from error
    return module.eval()
