"""Face tracks over a clip: detect on a stride of frames, link, split, interpolate, smooth.

The per-frame reference scripts (video-preprocessing's ``crop_vox.py``, Wav2Lip's
``preprocess.py``, syncnet_python's ``run_pipeline.py``) run a face detector on every frame,
which dominates their cost. Here the detector runs on every ``stride``-th frame (and the last
one), optionally on frames downscaled so their longer side is at most ``detect_size``, and the
frames in between get boxes by linear interpolation between the detections of the same face:

1. **Detect** on the sampled frames, in batches (:func:`detect_sampled`).
2. **Shot changes** (:func:`shot_changes`): consecutive sampled frames whose HSV colour
   histograms differ by more than ``shot_threshold`` (histogram-intersection distance in
   ``[0, 1]``) hold a cut; the frames between them are decoded at thumbnail size and the cut is
   placed at the largest consecutive difference, so its frame is exact. Tracks never span a cut.
3. **Link** (:func:`link_faces`): each face is matched greedily, best IoU first, to the face
   of an open track whose latest detection overlaps it by at least ``link_iou`` (syncnet_python
   links at IoU 0.5). A track survives up to ``max_missed`` consecutive samples without its
   face and then ends at its last detection: "face left the frame" when that detection
   reaches to within :data:`BORDER_SHARE` of its width of the frame's edge (or past it), else
   "face lost"; a cut ends every track at the cut
   frame ("shot change"); the clip's end ends the rest. Unmatched faces open new tracks.
4. **Interpolate** boxes linearly between a track's detections (held constant before its first
   and after its last detection), then **smooth** them with a centred moving mean or median of
   ``smooth`` frames (Wav2Lip's inference uses a 5-frame mean, syncnet_python a 13-frame
   median).

Boxes are ``x1, y1, x2, y2`` in source pixels with exclusive ``x2``/``y2``, as the detectors in
:mod:`talking_heads.preprocess.detect` return them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from talking_heads.preprocess.crop import iou, sample_indices
from talking_heads.preprocess.detect import FaceDetector

#: Reads frames ``indices`` of a clip as ``(n, H, W, 3)`` uint8 RGB.
FrameReader = Callable[[list[int]], np.ndarray]
#: Decodes frames ``indices`` front to back, downscaled so the longer side is at most
#: ``max_side``: yields batches ``(frames, scale)`` (e.g. :meth:`VideoSource.stream`).
FrameStream = Callable[[list[int], int | None], Iterator[tuple[np.ndarray, float]]]
SMOOTH_MODES = ("mean", "median")
THUMBNAIL = 64
#: A last detection this close to the frame edge (share of the box width) ends "face left".
BORDER_SHARE = 0.1


@dataclass(frozen=True)
class TrackParams:
    """How faces are detected and tracked (see the module docstring for each step)."""

    stride: int = 5
    detect_size: int | None = None
    link_iou: float = 0.5
    max_missed: int = 1
    shot_threshold: float | None = 0.3
    smooth: int = 0
    smooth_mode: str = "mean"
    batch_frames: int = 32

    def __post_init__(self) -> None:
        if self.stride < 1 or self.batch_frames < 1:
            raise ValueError("stride and batch_frames must be positive")
        if self.detect_size is not None and self.detect_size < 16:
            raise ValueError(f"detect_size must be at least 16 px, got {self.detect_size}")
        if not 0.0 <= self.link_iou <= 1.0:
            raise ValueError(f"link_iou must lie in [0, 1], got {self.link_iou}")
        if self.smooth_mode not in SMOOTH_MODES:
            raise ValueError(f"smooth_mode must be one of {SMOOTH_MODES}")


@dataclass
class FaceTrack:
    """One face over frames ``[start, end)`` with a box for every frame."""

    start: int
    end: int
    boxes: np.ndarray
    detected_frames: np.ndarray
    detected_boxes: np.ndarray
    end_reason: str

    @property
    def length(self) -> int:
        """Frames covered."""
        return self.end - self.start

    @property
    def tube(self) -> tuple[float, float, float, float]:
        """Union of the detected boxes (video-preprocessing's tube)."""
        boxes = self.detected_boxes[:, :4]
        return (
            float(boxes[:, 0].min()),
            float(boxes[:, 1].min()),
            float(boxes[:, 2].max()),
            float(boxes[:, 3].max()),
        )

    def box_at(self, frame: int) -> np.ndarray:
        """The (interpolated, smoothed) box of ``frame``."""
        if not self.start <= frame < self.end:
            raise IndexError(f"frame {frame} is outside the track [{self.start}, {self.end})")
        return self.boxes[frame - self.start]


@dataclass
class TrackingResult:
    """Tracks of one clip plus what the detector saw."""

    num_frames: int
    sampled: list[int]
    faces_per_sample: list[int]
    cuts: list[int]
    tracks: list[FaceTrack] = field(default_factory=list)

    @property
    def frames_detected(self) -> int:
        """How many frames the detector ran on."""
        return len(self.sampled)

    def longest(self) -> FaceTrack | None:
        """The longest track (earliest first among equals), or None."""
        ranked = sorted(self.tracks, key=lambda t: (-t.length, t.start))
        return ranked[0] if ranked else None


def downscale(frames: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Frames resized (area filter) so the longer side is at most ``max_side``; and the factor."""
    height, width = frames.shape[1:3]
    if max_side is None or max(height, width) <= max_side:
        return frames, 1.0
    import cv2

    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    return small, scale


def detect_sampled(
    read: FrameReader,
    indices: Sequence[int],
    detector: FaceDetector,
    *,
    detect_size: int | None = None,
    batch_frames: int = 32,
    stream: FrameStream | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Detections on frames ``indices`` (in source pixels) and their thumbnails for cut search.

    Frames come from ``stream`` when given (one decoding pass, downscaled by the decoder),
    else from ``read`` in batches downscaled here.
    """
    detections: list[np.ndarray] = []
    thumbs = []

    def batches() -> Iterator[tuple[np.ndarray, float]]:
        if stream is not None:
            yield from stream(list(indices), detect_size)
            return
        for begin in range(0, len(indices), batch_frames):
            yield downscale(read(list(indices[begin : begin + batch_frames])), detect_size)

    for small, scale in batches():
        for boxes in detector.detect(small):
            boxes = np.array(boxes, dtype=np.float32).reshape(-1, 5)
            boxes[:, :4] /= scale
            detections.append(boxes)
        thumbs.append(thumbnails(small))
    return detections, np.concatenate(thumbs) if thumbs else np.zeros((0, 3, 32))


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """Normalised HSV histograms ``(n, 3, 32)`` of frames (hue, saturation, value)."""
    import cv2

    out = np.zeros((len(frames), 3, 32), dtype=np.float32)
    for i, frame in enumerate(frames):
        small = cv2.resize(frame, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        for channel, top in enumerate((180, 256, 256)):
            hist = np.histogram(hsv[..., channel], bins=32, range=(0, top))[0]
            out[i, channel] = hist / hist.sum()
    return out


def histogram_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - intersection`` of HSV histograms, averaged over the channels (0 same, 1 disjoint)."""
    return 1.0 - np.minimum(a, b).sum(axis=-1).mean(axis=-1)


def shot_changes(
    indices: Sequence[int],
    hists: np.ndarray,
    threshold: float | None,
    read: FrameReader | None = None,
) -> list[int]:
    """First frames of new shots between consecutive sampled frames.

    With ``read``, the frames between two samples that straddle a cut are read and the cut is
    placed exactly; without it the cut is put at the later sample.
    """
    if threshold is None or threshold <= 0 or len(indices) < 2:
        return []
    distances = histogram_distance(hists[:-1], hists[1:])
    cuts = []
    for position in np.flatnonzero(distances > threshold):
        before, after = int(indices[position]), int(indices[position + 1])
        cut = after
        if read is not None and after - before > 1:
            gap = thumbnails(read(list(range(before, after + 1))))
            cut = before + 1 + int(np.argmax(histogram_distance(gap[:-1], gap[1:])))
        cuts.append(cut)
    return cuts


@dataclass
class _Open:
    start: int
    frames: list[int]
    boxes: list[np.ndarray]
    missed: int = 0


def _lost_reason(box: np.ndarray, frame_size: tuple[int, int] | None) -> str:
    """Why a track whose last detection is ``box`` ended without a cut."""
    if frame_size is not None:
        width, height = frame_size
        margin = BORDER_SHARE * float(box[2] - box[0])
        if (
            box[0] < margin
            or box[1] < margin
            or box[2] > width - margin
            or box[3] > height - margin
        ):
            return "face left the frame"
    return "face lost"


def _finish(track: _Open, end: int, reason: str, num_frames: int, params: TrackParams):
    frames = np.asarray(track.frames)
    detected = np.stack(track.boxes).astype(np.float32)
    end = min(max(end, int(frames[-1]) + 1), num_frames)
    span = np.arange(track.start, end)
    boxes = np.stack([np.interp(span, frames, detected[:, k]) for k in range(4)], axis=1)
    boxes = smooth_boxes(boxes, params.smooth, params.smooth_mode)
    return FaceTrack(track.start, end, boxes.astype(np.float32), frames, detected, reason)


def smooth_boxes(boxes: np.ndarray, window: int, mode: str = "mean") -> np.ndarray:
    """Centred moving mean/median over ``window`` frames (shrinking at the ends)."""
    if window <= 1 or len(boxes) < 2:
        return boxes
    half = window // 2
    out = np.empty_like(boxes, dtype=np.float64)
    reduce = np.mean if mode == "mean" else np.median
    for i in range(len(boxes)):
        out[i] = reduce(boxes[max(0, i - half) : i + half + 1], axis=0)
    return out


def link_faces(
    indices: Sequence[int],
    detections: Sequence[np.ndarray],
    num_frames: int,
    params: TrackParams,
    cuts: Sequence[int] = (),
    frame_size: tuple[int, int] | None = None,
) -> list[FaceTrack]:
    """Link per-sample detections into :class:`FaceTrack` s (see the module docstring).

    ``frame_size`` (width, height) lets a track that ends at the frame's edge say so.
    """
    open_tracks: list[_Open] = []
    done: list[FaceTrack] = []
    pending_cuts = sorted(cuts)
    previous = -1
    for position, (frame, boxes) in enumerate(zip(indices, detections, strict=True)):
        frame = int(frame)
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
        cut = next((c for c in pending_cuts if previous < c <= frame), None)
        if cut is not None:
            done += [_finish(t, cut, "shot change", num_frames, params) for t in open_tracks]
            open_tracks = []
        pairs = sorted(
            (
                (iou(track.boxes[-1][:4], box[:4]), t, b)
                for t, track in enumerate(open_tracks)
                for b, box in enumerate(boxes)
            ),
            key=lambda pair: -pair[0],
        )
        matched_tracks: set[int] = set()
        matched_boxes: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < params.link_iou or t in matched_tracks or b in matched_boxes:
                continue
            matched_tracks.add(t)
            matched_boxes.add(b)
            open_tracks[t].frames.append(frame)
            open_tracks[t].boxes.append(boxes[b])
            open_tracks[t].missed = 0
        still_open = []
        for t, track in enumerate(open_tracks):
            if t not in matched_tracks:
                track.missed += 1
                if track.missed > params.max_missed:
                    reason = _lost_reason(track.boxes[-1], frame_size)
                    done.append(_finish(track, 0, reason, num_frames, params))
                    continue
            still_open.append(track)
        open_tracks = still_open
        start = 0 if position == 0 else (cut if cut is not None else frame)
        for b, box in enumerate(boxes):
            if b not in matched_boxes:
                open_tracks.append(_Open(start=start, frames=[frame], boxes=[box]))
        previous = frame
    done += [_finish(t, num_frames, "end of clip", num_frames, params) for t in open_tracks]
    return sorted(done, key=lambda t: (t.start, -t.length))


def track_faces(
    read: FrameReader,
    num_frames: int,
    detector: FaceDetector,
    params: TrackParams | None = None,
    frame_size: tuple[int, int] | None = None,
    stream: FrameStream | None = None,
) -> TrackingResult:
    """Detect on a stride of frames, find cuts, and link faces into per-frame tracks.

    ``frame_size`` (width, height) tells tracks ending at the frame's edge from lost faces;
    ``stream`` decodes the sampled frames in one pass (``read`` still serves cut search).
    """
    params = params or TrackParams()
    indices = sample_indices(num_frames, params.stride)
    detections, hists = detect_sampled(
        read,
        indices,
        detector,
        detect_size=params.detect_size,
        batch_frames=params.batch_frames,
        stream=stream,
    )
    cuts = shot_changes(indices, hists, params.shot_threshold, read)
    tracks = link_faces(indices, detections, num_frames, params, cuts, frame_size)
    return TrackingResult(
        num_frames=num_frames,
        sampled=list(indices),
        faces_per_sample=[len(d) for d in detections],
        cuts=cuts,
        tracks=tracks,
    )
