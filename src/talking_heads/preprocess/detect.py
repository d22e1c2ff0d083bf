"""Face detectors behind one interface, looked up by name in ``DETECTORS``.

Every detector maps a batch of RGB frames to one ``(k, 5)`` float32 array per frame holding
``x1, y1, x2, y2, score`` in pixels, with ``x2``/``y2`` exclusive (``x2 - x1`` is the width).
Scores are detector-specific: dlib HOG's SVM margin, the MMOD CNN's confidence, or S3FD's
face probability (``sfd``, our PyTorch port of face-alignment's detector; torch is imported
only when it is built).
"""

from __future__ import annotations

import functools
import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from talking_heads.registry import Registry

_EMPTY = np.zeros((0, 5), dtype=np.float32)


class FaceDetector(ABC):
    """Detect faces in ``(N, H, W, 3)`` uint8 RGB frames."""

    name: str = "abstract"

    @abstractmethod
    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """One ``(k, 5)`` float32 array ``x1, y1, x2, y2, score`` per frame, best score first."""

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        return self.detect(frames)


DETECTORS: Registry[type[FaceDetector]] = Registry("detector")


def _as_batch(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    return frames


def _boxes(rows: list[tuple[float, float, float, float, float]]) -> np.ndarray:
    if not rows:
        return _EMPTY.copy()
    boxes = np.asarray(rows, dtype=np.float32)
    return boxes[np.argsort(-boxes[:, 4], kind="stable")]


def _face_models():
    """``face_recognition_models`` (its import warns about pkg_resources; silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition_models

    return face_recognition_models


@functools.cache
def dlib_model(kind: str) -> Any:
    """One shared instance per process of a dlib model (``hog``, ``cnn`` or ``shape68``).

    Loading takes up to a second (the 68-point predictor is a 100 MB file) and the models
    hold no per-call state, so every detector and landmarker in a process shares them.
    """
    import dlib

    models = _face_models()
    if kind == "hog":
        return dlib.get_frontal_face_detector()
    if kind == "cnn":
        return dlib.cnn_face_detection_model_v1(models.cnn_face_detector_model_location())
    if kind == "shape68":
        return dlib.shape_predictor(models.pose_predictor_model_location())
    raise KeyError(f"unknown dlib model {kind!r}; known: cnn, hog, shape68")


@DETECTORS.register("dlib_hog")
class DlibHOGDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal face detector (``get_frontal_face_detector``).

    Its smallest face is about 80 px; each ``upsample`` step halves that (and costs about 4x
    time). ``threshold`` is dlib's ``adjust_threshold``: 0 keeps dlib's own decision rule.
    """

    name = "dlib_hog"

    def __init__(self, upsample: int = 1, threshold: float = 0.0) -> None:
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self._detector = dlib_model("hog")

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """HOG detections per frame."""
        out = []
        for frame in _as_batch(frames):
            rects, scores, _ = self._detector.run(
                np.ascontiguousarray(frame), self.upsample, self.threshold
            )
            out.append(
                _boxes(
                    [
                        (r.left(), r.top(), r.right() + 1, r.bottom() + 1, s)
                        for r, s in zip(rects, scores, strict=True)
                    ]
                )
            )
        return out


@DETECTORS.register("dlib_cnn")
class DlibCNNDetector(FaceDetector):
    """dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``).

    More robust to pose than HOG but slow on CPU (about 0.6 s for a 176x144 frame with one
    upsampling step). Detections with a confidence below ``threshold`` are dropped.
    """

    name = "dlib_cnn"

    def __init__(self, upsample: int = 1, threshold: float = 0.0) -> None:
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self._detector = dlib_model("cnn")

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """CNN detections per frame."""
        out = []
        for frame in _as_batch(frames):
            found = self._detector(np.ascontiguousarray(frame), self.upsample)
            out.append(
                _boxes(
                    [
                        (
                            d.rect.left(),
                            d.rect.top(),
                            d.rect.right() + 1,
                            d.rect.bottom() + 1,
                            d.confidence,
                        )
                        for d in found
                        if d.confidence >= self.threshold
                    ]
                )
            )
        return out


@DETECTORS.register("sfd")
class SFDDetector(FaceDetector):
    """face-alignment's S3FD (``s3fd-619a316812.pth``), batched on ``device``.

    Reproduces face_alignment 1.5.0's ``SFDDetector`` (see
    :mod:`talking_heads.nets.s3fd`): frames are detected at the size given,
    boxes are S3FD's continuous coordinates (``x2 - x1`` is the width) and a detection is
    kept when its face probability is above ``threshold`` (upstream's ``filter_threshold``,
    0.5; candidates need 0.05 in any case). ``device`` is ``auto`` (CUDA when available,
    else the CPU), ``cpu`` or ``cuda``; ``batch_size`` frames go through the network at once
    (default 16 on a GPU, 4 on the CPU). The weights are resolved and verified on
    construction, so a missing file fails before any work.
    """

    name = "sfd"

    def __init__(
        self, threshold: float = 0.5, device: str = "auto", batch_size: int | None = None
    ) -> None:
        from talking_heads.nets import load_pretrained, resolve_device
        from talking_heads.nets.s3fd import S3FD

        self.threshold = float(threshold)
        self.device = resolve_device(device)
        self.batch_size = int(batch_size or (16 if self.device.type == "cuda" else 4))
        self._net = load_pretrained(S3FD, "s3fd").to(self.device)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """S3FD detections per frame, best score first."""
        from talking_heads.nets.s3fd import detect_faces

        frames = _as_batch(frames)
        out: list[np.ndarray] = []
        for begin in range(0, len(frames), self.batch_size):
            out += detect_faces(self._net, frames[begin : begin + self.batch_size], self.threshold)
        return out


def make_detector(name: str, **kwargs: object) -> FaceDetector:
    """Instantiate the detector registered as ``name`` with its keyword options."""
    return DETECTORS.get(name)(**kwargs)
