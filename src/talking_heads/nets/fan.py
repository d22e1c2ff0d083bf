"""2D-FAN-4 68-point landmarks: network, face crop and heatmap decoding of face_alignment 1.5.0.

Reference: ``face_alignment.models.FAN`` (four stacked hourglasses of depth 4 over 256
features), ``FaceAlignment.get_landmarks_from_image`` and ``utils.crop`` /
``utils.get_preds_fromhm``. The module keeps the upstream parameter names, so the state dict
``2DFAN4-11f355bf06.pth.tar`` (what face_alignment 1.5.0 itself loads, with
``torch.load(weights_only=True)``) loads with ``strict=True``. The TorchScript archives of
earlier releases (``2DFAN4-cd938726ad.zip``, ``2DFAN4_1.6-c827573f02.zip``) are not supported:
they carry code, not just weights.

Per face box ``x1, y1, x2, y2``, as upstream:

* centre ``(x2 - w/2, y2 - h/2 - 0.12 h)`` and scale ``(w + h) / 195``; the crop window spans
  ``200 * scale`` pixels, its corners computed in float32 like ``utils.transform`` and
  truncated; pixels outside the frame are black; the window is resized to 256x256 with
  OpenCV's bilinear filter and scaled to ``[0, 1]`` (RGB);
* heatmaps of the last hourglass, plus those of the mirrored crop mirrored back with the
  68-point left/right permutation (``flip_input=True``, upstream's default);
* per point the heatmap argmax, moved a quarter cell towards the larger neighbour on each
  axis (not on the border), minus half a cell, mapped back to the frame.

Upstream truncates the mapped points to integers (``transform_np`` casts to int32);
``integer_coords=True`` (the default) does the same, ``False`` keeps sub-pixel values.
Deviation: all boxes of a frame go through the network in one batch (upstream's default
``max_batch_size`` is 1); the inverse crop transform is evaluated in closed form instead of
with ``np.linalg.pinv``, so a point that lands within float rounding of an integer may
truncate differently.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

NUM_POINTS = 68
CROP_SIZE = 256
HEATMAP_SIZE = 64
REFERENCE_SCALE = 195.0
CENTER_SHIFT = 0.12
SCALE_PIXELS = 200.0


def _mirror_order() -> list[int]:
    """The 68-point left/right permutation (iBUG 300-W layout)."""
    order = list(range(NUM_POINTS))
    # jaw, eyebrows, nostrils, outer lips (upper / lower), inner lips (upper / lower)
    for begin, end in ((0, 17), (17, 27), (31, 36), (48, 55), (55, 60), (60, 65), (65, 68)):
        order[begin:end] = reversed(range(begin, end))
    # the eyes swap: outer corner, upper lid, inner corner, then the lower lid
    for right, left in ((36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)):
        order[right], order[left] = left, right
    return order


MIRROR = _mirror_order()


class ConvBlock(nn.Module):
    """FAN's pre-activation residual block: three 3x3 convolutions whose outputs concatenate.

    The outputs have ``out/2``, ``out/4`` and ``out/4`` channels; a BN-ReLU-1x1 projection
    (``downsample``) matches the residual when the channel count changes.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        widths = (c_in, c_out // 2, c_out // 4, c_out // 4)
        for i in range(3):
            self.add_module(f"bn{i + 1}", nn.BatchNorm2d(widths[i]))
            self.add_module(
                f"conv{i + 1}",
                nn.Conv2d(widths[i], widths[i + 1], kernel_size=3, padding=1, bias=False),
            )
        self.downsample: nn.Module | None = None
        if c_in != c_out:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False)
            )

    def forward(self, x: Tensor) -> Tensor:
        """``cat(out1, out2, out3) + residual``."""
        outs = []
        h = x
        for i in range(1, 4):
            h = getattr(self, f"conv{i}")(F.relu(getattr(self, f"bn{i}")(h)))
            outs.append(h)
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat(outs, dim=1) + residual


class HourGlass(nn.Module):
    """A recursive hourglass; level ``L`` holds blocks ``b1_L``, ``b2_L``, ``b3_L`` and the
    innermost level also ``b2_plus_1`` (upstream's flat module names)."""

    def __init__(self, depth: int, features: int) -> None:
        super().__init__()
        self.depth = depth
        for level in range(depth, 0, -1):
            for name in ("b1", "b2", "b3"):
                self.add_module(f"{name}_{level}", ConvBlock(features, features))
        self.add_module("b2_plus_1", ConvBlock(features, features))

    def _level(self, level: int, x: Tensor) -> Tensor:
        upper = getattr(self, f"b1_{level}")(x)
        lower = getattr(self, f"b2_{level}")(F.avg_pool2d(x, 2, stride=2))
        lower = self._level(level - 1, lower) if level > 1 else self.b2_plus_1(lower)
        lower = getattr(self, f"b3_{level}")(lower)
        return upper + F.interpolate(lower, scale_factor=2, mode="nearest")

    def forward(self, x: Tensor) -> Tensor:
        """Same-size features."""
        return self._level(self.depth, x)


class FAN(nn.Module):
    """Face Alignment Network with ``stacks`` hourglasses (2D-FAN-4: ``stacks=4``).

    ``forward`` maps ``(N, 3, 256, 256)`` RGB in ``[0, 1]`` to one ``(N, 68, 64, 64)``
    heatmap tensor per stack (the last is the prediction).
    """

    def __init__(self, stacks: int = 4) -> None:
        super().__init__()
        self.stacks = stacks
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        for i in range(stacks):
            self.add_module(f"m{i}", HourGlass(4, 256))
            self.add_module(f"top_m_{i}", ConvBlock(256, 256))
            self.add_module(f"conv_last{i}", nn.Conv2d(256, 256, kernel_size=1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(256))
            self.add_module(f"l{i}", nn.Conv2d(256, NUM_POINTS, kernel_size=1))
            if i < stacks - 1:
                self.add_module(f"bl{i}", nn.Conv2d(256, 256, kernel_size=1))
                self.add_module(f"al{i}", nn.Conv2d(NUM_POINTS, 256, kernel_size=1))

    def forward(self, x: Tensor) -> list[Tensor]:
        """Heatmaps of every stack."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.avg_pool2d(self.conv2(x), 2, stride=2)
        previous = self.conv4(self.conv3(x))
        outputs = []
        for i in range(self.stacks):
            features = getattr(self, f"top_m_{i}")(getattr(self, f"m{i}")(previous))
            features = F.relu(getattr(self, f"bn_end{i}")(getattr(self, f"conv_last{i}")(features)))
            heatmaps = getattr(self, f"l{i}")(features)
            outputs.append(heatmaps)
            if i < self.stacks - 1:
                previous = (
                    previous + getattr(self, f"bl{i}")(features) + getattr(self, f"al{i}")(heatmaps)
                )
        return outputs


def center_scale(box: np.ndarray) -> tuple[np.ndarray, float]:
    """Crop centre (float64 ``x, y``) and scale of a box ``x1, y1, x2, y2``, as upstream."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    center = np.array([x2 - (x2 - x1) / 2.0, y2 - (y2 - y1) / 2.0])
    center[1] = center[1] - (y2 - y1) * CENTER_SHIFT
    return center, (x2 - x1 + y2 - y1) / REFERENCE_SCALE


def _crop_corner(point: float, center: np.ndarray, scale: float) -> tuple[int, int]:
    """Frame pixel of crop pixel ``(point, point)`` (1-based), float32 and truncated like
    upstream's ``utils.transform(..., invert=True)``."""
    size = SCALE_PIXELS * scale
    forward = torch.eye(3)
    forward[0, 0] = CROP_SIZE / size
    forward[1, 1] = CROP_SIZE / size
    forward[0, 2] = CROP_SIZE * (-center[0] / size + 0.5)
    forward[1, 2] = CROP_SIZE * (-center[1] / size + 0.5)
    mapped = torch.matmul(torch.linalg.inv(forward), torch.tensor([point, point, 1.0]))
    x, y = mapped[:2].int().tolist()
    return x, y


def crop_face(frame: np.ndarray, center: np.ndarray, scale: float) -> np.ndarray:
    """The ``(256, 256, 3)`` uint8 face crop: the window zero-padded outside the frame."""
    import cv2

    left, top = _crop_corner(1.0, center, scale)
    right, bottom = _crop_corner(float(CROP_SIZE), center, scale)
    if right <= left or bottom <= top:
        return np.zeros((CROP_SIZE, CROP_SIZE, frame.shape[2]), dtype=np.uint8)
    window = np.zeros((bottom - top, right - left, frame.shape[2]), dtype=np.uint8)
    height, width = frame.shape[:2]
    x0, x1 = max(left, 0), min(right, width)
    y0, y1 = max(top, 0), min(bottom, height)
    if x1 > x0 and y1 > y0:
        window[y0 - top : y1 - top, x0 - left : x1 - left] = frame[y0:y1, x0:x1]
    return cv2.resize(window, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)


def heatmap_points(heatmaps: np.ndarray) -> np.ndarray:
    """``(B, C, 2)`` float32 heatmap coordinates ``x, y`` of ``(B, C, H, W)`` heatmaps.

    The argmax cell's centre (``index + 0.5``), moved by a quarter cell towards the larger
    neighbour on each axis when the cell is not on the border (upstream's
    ``_get_preds_fromhm``; its ``+1``/``-1`` bookkeeping cancels out).
    """
    B, C, H, W = heatmaps.shape
    flat = heatmaps.reshape(B, C, H * W)
    index = flat.argmax(axis=-1)
    row, col = index // W, index % W
    inner = (col > 0) & (col < W - 1) & (row > 0) & (row < H - 1)
    r, c = np.clip(row, 1, H - 2), np.clip(col, 1, W - 2)
    b_idx, c_idx = np.indices((B, C))
    dx = heatmaps[b_idx, c_idx, r, c + 1] - heatmaps[b_idx, c_idx, r, c - 1]
    dy = heatmaps[b_idx, c_idx, r + 1, c] - heatmaps[b_idx, c_idx, r - 1, c]
    points = np.stack([col + 1, row + 1], axis=-1).astype(np.float32)
    points += np.where(inner[..., None], np.sign(np.stack([dx, dy], axis=-1)) * 0.25, 0)
    points -= 0.5
    return points.astype(np.float32)


def to_frame(
    points: np.ndarray, center: np.ndarray, scale: float, *, integer: bool = True
) -> np.ndarray:
    """Heatmap coordinates → frame pixels (the inverse crop transform), float32.

    ``integer`` truncates towards zero as upstream's int32 cast does.
    """
    size = SCALE_PIXELS * scale
    gain = size / HEATMAP_SIZE
    offset = -HEATMAP_SIZE * (-np.asarray(center, dtype=np.float64) / size + 0.5) * gain
    mapped = points.astype(np.float64) * gain + offset
    return (np.trunc(mapped) if integer else mapped).astype(np.float32)


@torch.inference_mode()
def fan_landmarks(
    net: FAN,
    frame: np.ndarray,
    boxes: np.ndarray,
    *,
    flip: bool = True,
    integer_coords: bool = True,
) -> np.ndarray:
    """``(k, 68, 2)`` float32 ``x, y`` in frame pixels for the ``(k, >=4)`` boxes of one
    RGB uint8 frame, on ``net``'s device."""
    boxes = np.asarray(boxes, dtype=np.float64)
    boxes = boxes.reshape(-1, boxes.shape[-1] if boxes.size else 4)
    if len(boxes) == 0:
        return np.zeros((0, NUM_POINTS, 2), dtype=np.float32)
    frame = np.asarray(frame, dtype=np.uint8)
    placed = [center_scale(box) for box in boxes]
    crops = np.stack(
        [
            crop_face(frame, center, scale).transpose(2, 0, 1).astype(np.float32) / 255.0
            for center, scale in placed
        ]
    )
    device = next(net.parameters()).device
    batch = torch.from_numpy(crops).to(device)
    heatmaps = net(batch)[-1]
    if flip:
        heatmaps = heatmaps + net(batch.flip(-1))[-1][:, MIRROR].flip(-1)
    points = heatmap_points(heatmaps.float().cpu().numpy())
    return np.stack(
        [
            to_frame(points[i], center, scale, integer=integer_coords)
            for i, (center, scale) in enumerate(placed)
        ]
    )
