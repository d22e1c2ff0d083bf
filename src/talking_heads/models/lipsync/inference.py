"""The lip-sync inference pipeline of Wav2Lip's ``inference.py``, shared by the family.

Per clip, as upstream: frames (optionally downscaled by ``resize_factor``, or only the first
with ``static``); one face box per frame, from ``box`` (top, bottom, left, right, used as
given) or from a detector, padded by ``pads`` (top, bottom, left, right), clamped to the frame,
cast to int and smoothed by upstream's in-place 5-frame mean (``nosmooth`` turns it off); the
audio's windows, one per output frame (Wav2Lip: the 80×16 mel chunks at ``80/fps`` columns,
the last aligned to the end); frames cut to the number of windows, or reused cyclically when
the audio outlasts the video; each crop resized to 96² with ``cv2.resize`` (BGR, as upstream
never converts OpenCV's frames), masked, run through the network, scaled by 255 and cast to
uint8 (truncation, as upstream's ``astype``), resized back and pasted into the frame.

Where we differ from upstream, on purpose:

- faces are detected once per clip, in batches (``detect_batch``), only on the frames that
  are used, and optionally only on every ``detect_every``-th of them with the boxes
  interpolated between (default 1: every frame, as upstream); a face video that is a crop
  from a preprocessed shard (``clips/<id>.mp4`` beside a ``manifest.parquet``) is the
  tracked face already, so its whole frame is the box (:func:`shard_crop`) and nothing is
  detected;
- a frame without a face is kept unchanged and counted in :attr:`LipSyncGenerator.notes`
  (upstream aborts the whole video); the box smoothing then runs over the frames that have
  a face, in order;
- the detector is S3FD (upstream's) when its weights file is in the weights directory, else
  dlib's HOG detector, with a note (``detector`` option);
- generation is batched on any device with fp16 autocast on CUDA (``amp``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talking_heads.models.interface import AudioClip, GenerationInputs, Generator, InputError


def parse_quad(name: str, text: str | Any) -> tuple[int, int, int, int]:
    """``"a,b,c,d"`` (or four numbers) as four ints, else an :class:`InputError`."""
    values = text if isinstance(text, list | tuple) else str(text).replace(" ", ",").split(",")
    try:
        quad = tuple(int(v) for v in values if str(v) != "")
    except ValueError:
        quad = ()
    if len(quad) != 4:
        raise InputError(f"option {name}: expected four integers top,bottom,left,right: {text!r}")
    return quad  # type: ignore[return-value]


def smooth_boxes(boxes: np.ndarray, window: int = 5) -> np.ndarray:
    """Upstream's ``get_smoothened_boxes``: in place, each box becomes the mean of the
    ``window`` boxes from it on (the last ``window`` at the end, which by then hold smoothed
    values), cast back to the array's integer type."""
    boxes = boxes.copy()
    for i in range(len(boxes)):
        chunk = boxes[len(boxes) - window :] if i + window > len(boxes) else boxes[i : i + window]
        boxes[i] = np.mean(chunk, axis=0)
    return boxes


def shard_crop(path: Path | str | None) -> bool:
    """Whether ``path`` is a face crop of a preprocessed shard (``<shard>/clips/<file>`` with
    the shard's ``manifest.parquet``): its frames are the tracked face."""
    if path is None:
        return False
    path = Path(path)
    return path.parent.name == "clips" and (path.parent.parent / "manifest.parquet").is_file()


def make_face_detector(name: str, notes: list[str]) -> Any:
    """The detector ``name``; ``auto`` is S3FD when its weights are present, else dlib HOG."""
    from talking_heads.preprocess.detect import make_detector

    if name != "auto":
        return make_detector(name)
    try:
        return make_detector("sfd")
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        notes.append(f"S3FD unavailable, dlib HOG detector used instead: {first}")
        return make_detector("dlib_hog")


def detect_boxes(
    frames: list[np.ndarray], detector: Any, batch: int
) -> list[tuple[int, int, int, int] | None]:
    """The best face per BGR frame as upstream's ``(x1, y1, x2, y2)`` ints (clipped at 0 and
    truncated), ``None`` without a face; frames are detected ``batch`` at a time (RGB)."""
    found: list[tuple[int, int, int, int] | None] = []
    for begin in range(0, len(frames), batch):
        rgb = np.stack([f[:, :, ::-1] for f in frames[begin : begin + batch]])
        for dets in detector.detect(np.ascontiguousarray(rgb)):
            if len(dets) == 0:
                found.append(None)
                continue
            x1, y1, x2, y2 = (int(v) for v in np.clip(dets[0][:4], 0, None))
            found.append((x1, y1, x2, y2))
    return found


def network_state(checkpoint: Mapping[str, Any], network: str) -> dict[str, torch.Tensor]:
    """The ``network.``-prefixed part of one of our checkpoints' state dict, unprefixed."""
    prefix = f"{network}."
    return {
        k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)
    }


def interpolate_boxes(
    detected: dict[int, tuple[int, int, int, int] | None], count: int
) -> list[tuple[int, int, int, int] | None]:
    """Boxes for all ``count`` frames from those detected on some: a frame between two
    detections gets their linear interpolation (truncated to int), a detected frame its own;
    a frame next to a faceless sample gets none (it is kept unchanged)."""
    if len(detected) == count:
        return [detected[i] for i in range(count)]
    keys = sorted(detected)
    boxes: list[tuple[int, int, int, int] | None] = [None] * count
    for left, right in zip(keys, [*keys[1:], keys[-1]], strict=True):
        a, b = detected[left], detected[right]
        boxes[left] = a
        if a is None or b is None:
            continue
        for i in range(left + 1, right):
            t = (i - left) / (right - left)
            boxes[i] = tuple(int(x + t * (y - x)) for x, y in zip(a, b, strict=True))  # type: ignore[assignment]
    return boxes


class LipSyncGenerator(Generator):
    """A lip-sync method's inference: a network on 96² BGR face crops and audio windows,
    inside upstream's crop → generate → paste-back pipeline (see the module docstring).

    Subclasses give the audio windows (:meth:`audio_windows`) and one batch's prediction
    (:meth:`predict`).
    """

    resolution = 96
    #: ``(name, notes) -> detector``; a benchmark may put its own here
    detector_factory = staticmethod(make_face_detector)

    def __init__(self) -> None:
        self.notes: list[str] = []

    @abstractmethod
    def audio_windows(self, audio: AudioClip, fps: float) -> np.ndarray:
        """One audio window per output frame, ``(N, ...)`` float32."""

    @abstractmethod
    def predict(
        self, faces: torch.Tensor, windows: torch.Tensor, emotion: str | None
    ) -> torch.Tensor:
        """Faces ``(B, 3, 96, 96)`` BGR in [0, 1] and their windows → ``(B, 3, 96, 96)``."""

    @property
    @abstractmethod
    def network(self) -> torch.nn.Module:
        """The module to move to the device."""

    # -- the pipeline ---------------------------------------------------------------------
    def synthesize(
        self,
        inputs: GenerationInputs,
        options: Mapping[str, Any],
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """Lip-synced full frames ``(N, 3, H, W)`` in [0, 1], N = the audio's windows."""
        if inputs.face is None or inputs.audio is None:
            raise InputError("lip-sync needs a face video (or image) and audio")
        self.notes = []
        frames = self._frames(inputs.face, options)
        fps = float(inputs.fps)
        windows = self.audio_windows(inputs.audio, fps)
        if not options.get("audio_tail", True) and len(windows) > 1:
            windows = windows[:-1]
        if len(windows) == 0:
            raise InputError("the audio is too short for one window")
        frames = frames[: len(windows)]
        boxes = self._boxes(frames, options, inputs.face_path)
        out = self._generate(frames, boxes, windows, inputs.emotion, batch_size, device, amp)
        return torch.from_numpy(np.stack(out)[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255

    def reconstruct_clip(
        self,
        inputs: GenerationInputs,
        options: Mapping[str, Any],
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """A preprocessed face crop re-synchronised to its own speech: the crop is the box."""
        height, width = inputs.face.shape[-2:]
        options = {**options, "box": f"0,{height},0,{width}"}
        return self.synthesize(inputs, options, batch_size=batch_size, device=device, amp=amp)

    def _frames(self, face: torch.Tensor, options: Mapping[str, Any]) -> list[np.ndarray]:
        import cv2

        rgb = (face.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        if options.get("static"):
            rgb = rgb[:1]
        factor = int(options.get("resize_factor", 1))
        if factor < 1:
            raise InputError(f"option resize_factor must be ≥ 1, got {factor}")
        frames = []
        for frame in rgb:
            bgr = np.ascontiguousarray(frame[:, :, ::-1])
            if factor > 1:
                bgr = cv2.resize(bgr, (bgr.shape[1] // factor, bgr.shape[0] // factor))
            frames.append(bgr)
        return frames

    def _boxes(
        self, frames: list[np.ndarray], options: Mapping[str, Any], face_path: Path | None
    ) -> list[tuple[int, int, int, int] | None]:
        """``(y1, y2, x1, x2)`` per frame, or ``None`` where no face was found."""
        height, width = frames[0].shape[:2]
        box = parse_quad("box", options.get("box", "-1,-1,-1,-1"))
        if box[0] == -1 and shard_crop(face_path):
            box = (0, height, 0, width)
        if box[0] != -1:
            return [box] * len(frames)
        detector = self.detector_factory(str(options.get("detector", "auto")), self.notes)
        every = int(options.get("detect_every", 1))
        if every < 1:
            raise InputError(f"option detect_every must be ≥ 1, got {every}")
        sampled = list(range(0, len(frames), every))
        if sampled[-1] != len(frames) - 1:
            sampled.append(len(frames) - 1)
        found_rects = detect_boxes(
            [frames[i] for i in sampled], detector, int(options.get("detect_batch", 16))
        )
        rects = interpolate_boxes(dict(zip(sampled, found_rects, strict=True)), len(frames))
        top, bottom, left, right = parse_quad("pads", options.get("pads", "0,10,0,0"))
        found = [i for i, r in enumerate(rects) if r is not None]
        if not found:
            raise InputError("no face found in any frame of the face video (try --box)")
        padded = np.array(
            [
                [
                    max(0, rects[i][0] - left),
                    max(0, rects[i][1] - top),
                    min(width, rects[i][2] + right),
                    min(height, rects[i][3] + bottom),
                ]
                for i in found
            ]
        )
        if not options.get("nosmooth") and len(padded) >= 5:
            padded = smooth_boxes(padded, 5)
        if len(found) < len(frames):
            self.notes.append(
                f"no face in {len(frames) - len(found)} of {len(frames)} frames: kept unchanged"
            )
        boxes: list[tuple[int, int, int, int] | None] = [None] * len(frames)
        for i, (x1, y1, x2, y2) in zip(found, padded.tolist(), strict=True):
            boxes[i] = (y1, y2, x1, x2)
        return boxes

    def _generate(
        self,
        frames: list[np.ndarray],
        boxes: list[tuple[int, int, int, int] | None],
        windows: np.ndarray,
        emotion: str | None,
        batch_size: int,
        device: torch.device | str | None,
        amp: bool,
    ) -> list[np.ndarray]:
        import cv2

        device = torch.device(device or "cpu")
        self.network.to(device).eval()
        size = self.resolution
        out: list[np.ndarray] = []
        pending: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            if not pending:
                return
            index = [i for i, _ in pending]
            crops = torch.from_numpy(np.stack([c for _, c in pending])).to(device)
            faces = crops.permute(0, 3, 1, 2).float() / 255.0
            audio = torch.from_numpy(windows[index]).to(device)
            with (
                torch.no_grad(),
                torch.autocast("cuda", dtype=torch.float16, enabled=amp and device.type == "cuda"),
            ):
                pred = self.predict(faces, audio, emotion)
            pred = (pred.float().cpu().permute(0, 2, 3, 1).numpy() * 255.0).astype(np.uint8)
            for i, p in zip(index, pred, strict=True):
                y1, y2, x1, x2 = boxes[i % len(frames)]  # type: ignore[misc]
                out[i][y1:y2, x1:x2] = cv2.resize(p, (x2 - x1, y2 - y1))
            pending.clear()

        for i in range(len(windows)):
            frame = frames[i % len(frames)].copy()
            out.append(frame)
            box = boxes[i % len(frames)]
            if box is None:
                continue
            y1, y2, x1, x2 = box
            pending.append((i, cv2.resize(frame[y1:y2, x1:x2], (size, size))))
            if len(pending) >= batch_size:
                flush()
        flush()
        return out
