"""Our PyTorch re-implementations of face-alignment's face networks (S3FD, 2D-FAN-4).

The modules load the upstream checkpoints unchanged (same parameter names, strict loading);
pre- and post-processing follow face_alignment 1.5.0. Importing this package imports torch,
so ``detect.py`` and ``landmarks.py`` import it lazily, when a torch backend is built.
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
