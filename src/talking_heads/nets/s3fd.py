"""S3FD face detector: network, pre-processing and box decoding of face_alignment 1.5.0.

Reference: ``face_alignment.detection.sfd`` (``net_s3fd.s3fd``, ``detect.batch_detect``,
``SFDDetector``), itself a port of the S3FD Caffe model. The network keeps the upstream
parameter names, so ``s3fd-619a316812.pth`` loads with ``strict=True``; like upstream, ``fc6``
is a plain 3x3 convolution with padding 3 (the Caffe layer's dilation 3 is not used: the
weights were converted that way), which makes the ``fc7`` map 4 cells larger than its stride
implies. Everything below reproduces upstream's arithmetic so boxes match to float precision:

* input: RGB uint8 frames → float32, channels flipped to BGR, minus the BGR mean
  ``(104, 117, 123)``; no resizing (frames are detected at the size given);
* six heads with strides 4..128; a cell is a candidate when its face softmax exceeds 0.05;
  its prior is ``(stride/2 + x*stride, stride/2 + y*stride, 4*stride, 4*stride)``, decoded
  with variances ``(0.1, 0.2)`` in NumPy (float32 offsets, float64 priors, as upstream);
* greedy NMS at IoU 0.3 with upstream's ``+1`` pixel convention in areas and overlaps, then
  detections with a score above ``threshold`` are kept (``SFDDetector.filter_threshold``).

Deviations: frames of a batch are decoded independently. Upstream's ``batch_detect`` takes a
cell as a candidate in every frame when it passes 0.05 in any frame of the batch (adding
duplicates and sub-0.05 boxes that NMS and a ``threshold >= 0.05`` remove again), so results
equal upstream's for ``threshold >= 0.05``; below that, our candidates still need 0.05.
NMS runs in ``torchvision.ops.nms`` (float64) after ordering candidates the way upstream's
``np.argsort(scores)[::-1]`` does, so tied scores resolve as in face_alignment.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

CANDIDATE_SCORE = 0.05
NMS_IOU = 0.3
VARIANCES = (0.1, 0.2)
BGR_MEAN = (104.0, 117.0, 123.0)

# VGG16 stages: (stage, input channels, output channels, convolutions); a 2x2 max pool follows
# every stage; the last convolution of stages 3-5 feeds an L2-normalised detection head.
_VGG = ((1, 3, 64, 2), (2, 64, 128, 2), (3, 128, 256, 3), (4, 256, 512, 3), (5, 512, 512, 3))
# Detection sources in output order: (feature name, channels, confidence outputs).
_HEADS = (
    ("conv3_3_norm", 256, 4),
    ("conv4_3_norm", 512, 2),
    ("conv5_3_norm", 512, 2),
    ("fc7", 1024, 2),
    ("conv6_2", 512, 2),
    ("conv7_2", 256, 2),
)
_NORM_SCALES = {"conv3_3_norm": 10.0, "conv4_3_norm": 8.0, "conv5_3_norm": 5.0}


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (``weight``)."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.eps = 1e-10
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: Tensor) -> Tensor:
        """``x / (||x||_2 over channels + eps) * weight``, in upstream's operation order."""
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return x / norm * self.weight.view(1, -1, 1, 1)


class S3FD(nn.Module):
    """The S3FD network with face_alignment's parameter names.

    ``forward`` maps a BGR, mean-subtracted ``(N, 3, H, W)`` float batch to six
    ``(confidence, location)`` pairs, strides 4, 8, 16, 32, 64 and 128. The first head's
    four confidence maps are reduced to two with S3FD's max-out background label.
    """

    def __init__(self) -> None:
        super().__init__()
        for stage, c_in, c_out, convs in _VGG:
            for i in range(1, convs + 1):
                conv = nn.Conv2d(c_in if i == 1 else c_out, c_out, kernel_size=3, padding=1)
                self.add_module(f"conv{stage}_{i}", conv)
        self.fc6 = nn.Conv2d(512, 1024, kernel_size=3, stride=1, padding=3)
        self.fc7 = nn.Conv2d(1024, 1024, kernel_size=1)
        self.conv6_1 = nn.Conv2d(1024, 256, kernel_size=1)
        self.conv6_2 = nn.Conv2d(256, 512, kernel_size=3, stride=2, padding=1)
        self.conv7_1 = nn.Conv2d(512, 128, kernel_size=1)
        self.conv7_2 = nn.Conv2d(128, 256, kernel_size=3, stride=2, padding=1)
        for name, scale in _NORM_SCALES.items():
            self.add_module(name, L2Norm(self._channels(name), scale))
        for name, channels, n_conf in _HEADS:
            self.add_module(f"{name}_mbox_conf", nn.Conv2d(channels, n_conf, 3, padding=1))
            self.add_module(f"{name}_mbox_loc", nn.Conv2d(channels, 4, 3, padding=1))

    @staticmethod
    def _channels(name: str) -> int:
        return next(channels for head, channels, _ in _HEADS if head == name)

    def forward(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Six ``(confidence (N, 2, h, w), location (N, 4, h, w))`` pairs, finest first."""
        features: dict[str, Tensor] = {}
        h = x
        for stage, _, _, convs in _VGG:
            for i in range(1, convs + 1):
                h = F.relu(getattr(self, f"conv{stage}_{i}")(h))
            if stage >= 3:
                features[f"conv{stage}_3_norm"] = getattr(self, f"conv{stage}_3_norm")(h)
            h = F.max_pool2d(h, 2, 2)
        h = F.relu(self.fc7(F.relu(self.fc6(h))))
        features["fc7"] = h
        h = F.relu(self.conv6_2(F.relu(self.conv6_1(h))))
        features["conv6_2"] = h
        h = F.relu(self.conv7_2(F.relu(self.conv7_1(h))))
        features["conv7_2"] = h
        outputs = []
        for name, _, _ in _HEADS:
            feature = features[name]
            conf = getattr(self, f"{name}_mbox_conf")(feature)
            loc = getattr(self, f"{name}_mbox_loc")(feature)
            if conf.shape[1] == 4:  # max-out background label: max of 3 background maps
                conf = torch.cat([conf[:, :3].amax(dim=1, keepdim=True), conf[:, 3:]], dim=1)
            outputs.append((conf, loc))
        return outputs


def preprocess(frames: np.ndarray, device: torch.device | str) -> Tensor:
    """``(N, H, W, 3)`` uint8 RGB → ``(N, 3, H, W)`` float32 BGR minus the BGR mean."""
    batch = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    batch = batch.permute(0, 3, 1, 2).to(torch.float32).flip(-3)
    return batch - torch.tensor(BGR_MEAN, device=batch.device).view(1, 3, 1, 1)


def decode(loc: np.ndarray, cells: np.ndarray, stride: int) -> np.ndarray:
    """``(m, 4)`` float64 boxes ``x1, y1, x2, y2`` from float32 offsets at ``(y, x)`` cells.

    Upstream's SSD decoding: centre ``prior + offset * 0.1 * prior_size``, size
    ``prior_size * exp(offset * 0.2)``, evaluated with the same NumPy dtypes and order.
    """
    centres = stride / 2 + cells[:, ::-1].astype(np.float64) * stride
    sizes = np.full_like(centres, stride * 4.0)
    boxes = np.concatenate(
        (
            centres + loc[:, :2] * VARIANCES[0] * sizes,
            sizes * np.exp(loc[:, 2:] * VARIANCES[1]),
        ),
        axis=1,
    )
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices kept by greedy NMS, best first, with upstream's ``+1`` pixel areas.

    Candidates are pre-ordered like upstream's ``scores.argsort()[::-1]``; torchvision's
    stable sort then keeps that order among tied scores.
    """
    from torchvision.ops import nms as tv_nms

    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(scores)[::-1]
    shifted = torch.from_numpy(boxes[order] + np.array([0.0, 0.0, 1.0, 1.0]))
    keep = tv_nms(shifted, torch.from_numpy(scores[order].astype(np.float64)), iou)
    return order[keep.numpy()]


@torch.inference_mode()
def candidates(net: S3FD, batch: Tensor) -> list[np.ndarray]:
    """Per frame, ``(m, 5)`` float64 decoded boxes and scores of cells scoring over 0.05.

    Rows are ordered head by head, then row-major within a head, as upstream's.
    """
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
    for level, (conf, loc) in enumerate(net(batch)):
        score = F.softmax(conf, dim=1)[:, 1]
        n, y, x = torch.nonzero(score > CANDIDATE_SCORE, as_tuple=True)
        offsets = loc.permute(0, 2, 3, 1)[n, y, x]
        cells.append(
            (
                n.cpu().numpy(),
                torch.stack([y, x], dim=1).cpu().numpy(),
                torch.cat([offsets, score[n, y, x].unsqueeze(1)], dim=1).float().cpu().numpy(),
                2 ** (level + 2),
            )
        )
    out = []
    for frame in range(len(batch)):
        rows = []
        for n, yx, values, stride in cells:
            mine = n == frame
            boxes = decode(values[mine, :4], yx[mine], stride)
            rows.append(np.concatenate([boxes, values[mine, 4:].astype(np.float64)], axis=1))
        out.append(np.concatenate(rows, axis=0))
    return out


def detect_faces(net: S3FD, frames: np.ndarray, threshold: float = 0.5) -> list[np.ndarray]:
    """``(k, 5)`` float32 ``x1, y1, x2, y2, score`` per RGB uint8 frame, best score first.

    Runs ``net`` on its own device on the whole batch; NMS and the ``threshold`` filter
    (scores strictly above it) follow face_alignment's ``SFDDetector``.
    """
    device = next(net.parameters()).device
    out = []
    for found in candidates(net, preprocess(frames, device)):
        kept = found[nms(found[:, :4], found[:, 4])]
        kept = kept[kept[:, 4] > threshold]
        out.append(kept.astype(np.float32).reshape(-1, 5))
    return out
