"""FOMM / video-preprocessing style face crops: a face track, its tube box, a square crop.

Follows ``AliaksandrSiarohin/video-preprocessing`` (``crop_vox.py`` and ``util.py``):

1. Faces are detected on sampled frames (every ``stride``-th frame plus the last one; upstream
   detects every frame, i.e. ``stride=1``).
2. Detections are linked into tracks by IoU with the track's *first* box: a sampled frame whose
   best match has IoU < ``iou_threshold`` (upstream ``--iou_with_initial 0.25``) ends the track
   and starts a new one, as does reaching ``max_frames`` (upstream 1024). Upstream also ends a
   track on any frame without a detection; here up to ``max_missed`` consecutive sampled frames
   without a face are tolerated (``0`` reproduces upstream). A track covers the frames from its
   first sample up to the sample that ends it (exclusive; for a run of misses, the first miss
   of the run), or to the end of the clip. With ``stride=1`` this is upstream's chunking.
3. The tube box is the union of the track's boxes. Tracks shorter than ``min_frames``
   (upstream 64) or whose tube has ``max(w, h) < min_size`` (upstream 256) are rejected.
4. The tube is enlarged by ``increase`` (upstream 0.1) on each side and grown to a square
   (``compute_aspect_preserved_bbox``); a box leaving the frame is rejected (upstream) or,
   with ``border="shift"``, moved inside the frame when it fits; with ``border="pad"`` it is
   moved inside along every axis where it fits and, where it is larger than the frame, made
   to cover the frame with the rest padded (:func:`place_inside`, :func:`crop_padded`: edge
   or constant pixels).
5. Frames are cropped and resized with upstream's anti-aliased resize
   (``skimage.transform.resize(..., anti_aliasing=True)`` + ``img_as_ubyte``), by default
   through an equivalent OpenCV filter that is within one grey level and ten times faster
   (:func:`resize_antialiased`).

One crop is produced per input: the longest track that passes every check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]
IntBox = tuple[int, int, int, int]
BORDER_MODES = ("reject", "shift", "pad")
PAD_MODES = ("edge", "constant")
#: Pixels of a crop box outside the frame: left, top, right, bottom.
Padding = tuple[int, int, int, int]
NO_PADDING: Padding = (0, 0, 0, 0)


def sample_indices(num_frames: int, stride: int) -> list[int]:
    """Frames to run detection on: every ``stride``-th frame and always the last one."""
    if num_frames <= 0:
        return []
    stride = max(1, int(stride))
    indices = list(range(0, num_frames, stride))
    if indices[-1] != num_frames - 1:
        indices.append(num_frames - 1)
    return indices


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes (exclusive ``x2``/``y2``)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def join(a: Sequence[float], b: Sequence[float]) -> Box:
    """Smallest box holding both boxes."""
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


@dataclass
class Track:
    """One face track: frames ``[start, end)``, its first box and the union (tube) box."""

    start: int
    first_box: Box
    tube: Box
    end: int = -1
    hits: list[int] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Number of frames covered."""
        return self.end - self.start


def link_tracks(
    indices: Sequence[int],
    detections: Sequence[np.ndarray],
    num_frames: int,
    *,
    iou_threshold: float = 0.25,
    max_missed: int = 0,
    max_frames: int | None = None,
) -> list[Track]:
    """Link per-sample detections (``(k, 5)`` arrays) into tracks, in time order.

    A track starts at the highest-scoring face of its first sample; later samples use the face
    with the best IoU against the track's first box.
    """
    tracks: list[Track] = []
    current: Track | None = None
    missed = 0
    first_miss = 0

    def close(end: int) -> None:
        nonlocal current
        if current is not None:
            current.end = end
            tracks.append(current)
        current = None

    def open_at(frame: int, box: Box) -> None:
        nonlocal current, missed
        current = Track(start=frame, first_box=box, tube=box, hits=[frame])
        missed = 0

    for position, (frame, boxes) in enumerate(zip(indices, detections, strict=True)):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
        start = 0 if position == 0 else frame
        if current is None:
            if len(boxes):
                open_at(start, tuple(boxes[0, :4]))
            continue
        if max_frames is not None and frame - current.start >= max_frames:
            boundary = current.start + max_frames
            close(boundary)
            if len(boxes):
                open_at(boundary, tuple(boxes[0, :4]))
            continue
        if not len(boxes):
            if missed == 0:
                first_miss = frame
            missed += 1
            if missed > max_missed:
                close(first_miss)
            continue
        overlaps = [iou(current.first_box, box[:4]) for box in boxes]
        best = int(np.argmax(overlaps))
        if overlaps[best] < iou_threshold:
            close(frame)
            open_at(frame, tuple(boxes[0, :4]))
            continue
        box = tuple(boxes[best, :4])
        current.tube = join(current.tube, box)
        current.hits.append(frame)
        missed = 0
    close(num_frames)
    return tracks


def aspect_preserved_box(box: Sequence[float], increase: float) -> IntBox:
    """Enlarge by ``increase`` per side and grow the short side to a square (upstream formula).

    Both sides become ``(1 + 2 * increase) * max(w, h)``; coordinates are truncated with
    ``int()`` as in video-preprocessing's ``compute_aspect_preserved_bbox``.
    """
    left, top, right, bot = box
    width, height = right - left, bot - top
    width_increase = max(increase, ((1 + 2 * increase) * height - width) / (2 * width))
    height_increase = max(increase, ((1 + 2 * increase) * width - height) / (2 * height))
    return (
        int(left - width_increase * width),
        int(top - height_increase * height),
        int(right + width_increase * width),
        int(bot + height_increase * height),
    )


def fit_inside(box: IntBox, width: int, height: int) -> IntBox | None:
    """Shift ``box`` inside a ``width`` x ``height`` frame, or None when it is larger."""
    left, top, right, bot = box
    if right - left > width or bot - top > height:
        return None
    dx = -left if left < 0 else min(0, width - right)
    dy = -top if top < 0 else min(0, height - bot)
    return (left + dx, top + dy, right + dx, bot + dy)


def _place_axis(low: int, high: int, size: int) -> int:
    """Offset moving ``[low, high)`` inside ``[0, size)``, or, when it is longer, the smallest
    move that makes it cover ``[0, size)``."""
    if high - low <= size:
        return -low if low < 0 else min(0, size - high)
    return -low if low > 0 else max(0, size - high)


def place_inside(box: IntBox, width: int, height: int) -> tuple[IntBox, Padding]:
    """``box`` moved inside a ``width`` x ``height`` frame along each axis where it fits; along
    an axis where it is longer than the frame it covers the frame. Returns the moved box and
    how many of its pixels lie outside the frame (left, top, right, bottom): the padding a
    crop of it needs."""
    left, top, right, bot = box
    dx = _place_axis(left, right, width)
    dy = _place_axis(top, bot, height)
    moved = (left + dx, top + dy, right + dx, bot + dy)
    padding = (
        max(0, -moved[0]),
        max(0, -moved[1]),
        max(0, moved[2] - width),
        max(0, moved[3] - height),
    )
    return moved, padding


def crop_padded(frame: np.ndarray, box: IntBox, pad_mode: str = "constant") -> np.ndarray:
    """``frame[top:bot, left:right]``, padded where the box leaves the frame: ``edge`` repeats
    the border pixels, ``constant`` fills with black (also used when the box misses the frame
    entirely)."""
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    left, top, right, bot = (int(v) for v in box)
    height, width = frame.shape[:2]
    if left >= 0 and top >= 0 and right <= width and bot <= height:
        return frame[top:bot, left:right]
    y1, y2, x1, x2 = max(top, 0), min(bot, height), max(left, 0), min(right, width)
    if y2 <= y1 or x2 <= x1:
        return np.zeros((bot - top, right - left, *frame.shape[2:]), dtype=frame.dtype)
    widths = [(y1 - top, bot - y2), (x1 - left, right - x2)] + [(0, 0)] * (frame.ndim - 2)
    inner = frame[y1:y2, x1:x2]
    if pad_mode == "edge":
        return np.pad(inner, widths, mode="edge")
    return np.pad(inner, widths, mode="constant")


@dataclass(frozen=True)
class CropPlan:
    """The outcome of :func:`plan_crop`: a crop box and frame range, or the reason for none."""

    ok: bool
    reason: str = ""
    start: int = 0
    end: int = 0
    box: IntBox | None = None
    tube: Box | None = None
    #: how far the enlarged box was moved to fit the frame (``border`` shift / pad)
    shift: tuple[int, int] = (0, 0)
    #: pixels of the box outside the frame, filled by padding (``border="pad"``)
    padding: Padding = NO_PADDING

    @property
    def num_frames(self) -> int:
        """Frames in the planned crop."""
        return self.end - self.start


def _check_track(
    track: Track, frame_size: tuple[int, int], *, min_size: int, increase: float, border: str
) -> CropPlan:
    width, height = frame_size
    left, top, right, bot = track.tube
    size = max(right - left, bot - top)
    if size < min_size:
        return CropPlan(False, f"face too small: {size:.0f} px < min_size {min_size}")
    box = aspect_preserved_box(track.tube, increase)
    inside = box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height
    padding = NO_PADDING
    placed: IntBox | None = box
    if not inside:
        if border == "pad":
            placed, padding = place_inside(box, width, height)
        else:
            placed = fit_inside(box, width, height) if border == "shift" else None
        if placed is None:
            return CropPlan(
                False,
                f"face too close to the border: enlarged box {box} leaves the "
                f"{width}x{height} frame (increase {increase})",
            )
    x1, y1, x2, y2 = (float(v) for v in track.tube)
    shift = (placed[0] - box[0], placed[1] - box[1])
    return CropPlan(True, "", track.start, track.end, placed, (x1, y1, x2, y2), shift, padding)


def plan_crop(
    tracks: Sequence[Track],
    frame_size: tuple[int, int],
    *,
    num_sampled: int,
    min_frames: int = 64,
    min_size: int = 256,
    increase: float = 0.1,
    border: str = "reject",
) -> CropPlan:
    """Pick the longest track passing the length, size and border checks (upstream order).

    ``frame_size`` is ``(width, height)``. When none passes, the reason is that of the longest
    track of sufficient length, or the length / no-face reason.
    """
    if border not in BORDER_MODES:
        raise ValueError(f"border must be one of {BORDER_MODES}, got {border!r}")
    if not tracks:
        return CropPlan(False, f"no face detected in any sampled frame ({num_sampled} sampled)")
    ranked = sorted(tracks, key=lambda t: (-t.length, t.start))
    long_enough = [t for t in ranked if t.length >= min_frames]
    if not long_enough:
        return CropPlan(
            False,
            f"no face track of at least {min_frames} frames (longest track "
            f"{ranked[0].length} frames, {len(tracks)} tracks)",
        )
    first_failure: CropPlan | None = None
    for track in long_enough:
        plan = _check_track(track, frame_size, min_size=min_size, increase=increase, border=border)
        if plan.ok:
            return plan
        first_failure = first_failure or plan
    assert first_failure is not None
    return first_failure


RESIZE_MODES = ("fast", "skimage")


def resize_antialiased(image: np.ndarray, size: int, mode: str = "fast") -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``size`` squared with anti-aliasing.

    ``mode="skimage"`` is upstream's ``img_as_ubyte(resize(image, shape, anti_aliasing=True))``.
    ``mode="fast"`` computes the same filter about ten times faster: OpenCV's Gaussian of
    ``sigma = max(0, (scale - 1) / 2)`` per axis with mirrored borders (scipy's ``mirror``,
    what skimage applies), then separable linear interpolation on pixel centres with mirrored
    edges, rounded to uint8. It differs from skimage by at most one grey level (tested).
    """
    if mode == "skimage":
        from skimage import img_as_ubyte
        from skimage.transform import resize

        return img_as_ubyte(resize(image, (size, size), anti_aliasing=True))
    if mode != "fast":
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    import cv2

    height, width = image.shape[:2]
    sigma_y = max(0.0, (height / size - 1) / 2)
    sigma_x = max(0.0, (width / size - 1) / 2)
    work = image.astype(np.float32)
    if sigma_x > 0 or sigma_y > 0:
        work = cv2.GaussianBlur(
            work, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y, borderType=cv2.BORDER_REFLECT_101
        )
    if height >= size and width >= size:
        # downscaling samples only inside the image: OpenCV's bilinear on the float image is the
        # same pixel-centre interpolation as _linear_axis, several times faster
        out = cv2.resize(work, (size, size), interpolation=cv2.INTER_LINEAR)
    else:
        out = _linear_axis(_linear_axis(work, size, axis=1), size, axis=0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _linear_axis(image: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linear interpolation along ``axis`` to ``size`` samples on pixel centres; positions
    outside the image are mirrored about the edge pixels (skimage's ``mode="reflect"``)."""
    length = image.shape[axis]
    positions = (np.arange(size) + 0.5) * (length / size) - 0.5
    if length > 1:
        period = 2 * (length - 1)
        positions = np.abs(positions) % period
        positions = np.where(positions > length - 1, period - positions, positions)
    else:
        positions = np.zeros_like(positions)
    lower = np.floor(positions).astype(np.int64)
    upper = np.minimum(lower + 1, length - 1)
    weight = (positions - lower).astype(np.float32)
    shape = [1] * image.ndim
    shape[axis] = size
    weight = weight.reshape(shape)
    return (
        np.take(image, lower, axis=axis) * (1 - weight) + np.take(image, upper, axis=axis) * weight
    )


def crop_frames(
    frames: np.ndarray,
    box: IntBox,
    resolution: int | None,
    resize: str = "fast",
    pad_mode: str = "constant",
) -> np.ndarray:
    """Crop ``(T, H, W, 3)`` uint8 frames to ``box`` and resize to ``resolution`` squared.

    Resizing is anti-aliased as in video-preprocessing's ``crop_bbox_from_frames`` (see
    :func:`resize_antialiased`); ``resolution=None`` keeps the crop size. Where the box leaves
    the frame the crop is padded (:func:`crop_padded` with ``pad_mode``).
    """
    selected = np.stack([crop_padded(frame, box, pad_mode) for frame in np.asarray(frames)])
    if resolution is None:
        return np.ascontiguousarray(selected)
    shape = (int(resolution), int(resolution))
    out = np.empty((len(selected), *shape, 3), dtype=np.uint8)
    for i, frame in enumerate(selected):
        out[i] = resize_antialiased(frame, int(resolution), resize)
    return out
