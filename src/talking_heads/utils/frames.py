"""Frames as tensors: uint8 ``(T, H, W, 3)`` arrays ↔ float ``(T, 3, H, W)`` in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 → ``(T, 3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def to_frames(tensor: torch.Tensor) -> np.ndarray:
    """``(T, 3, H, W)`` float in [0, 1] → ``(T, H, W, 3)`` uint8 (rounded)."""
    array = tensor.detach().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(T, 3, H, W)`` frames to ``size``² with anti-aliasing when needed."""
    if frames.shape[-2:] == (size, size):
        return frames
    return torch.nn.functional.interpolate(
        frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
