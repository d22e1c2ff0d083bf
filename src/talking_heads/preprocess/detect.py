"""Face detectors behind one interface, looked up by name in ``DETECTORS``.

Every detector maps a batch of RGB frames to one ``(k, 5)`` float32 array per frame holding
``x1, y1, x2, y2, score`` in pixels, with ``x2``/``y2`` exclusive (``x2 - x1`` is the width).
Scores are detector-specific: dlib HOG's SVM margin, or the MMOD CNN's confidence.
Further backends (e.g. face-alignment's S3FD) are added as one more registry entry.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod

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


@DETECTORS.register("dlib_hog")
class DlibHOGDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal face detector (``get_frontal_face_detector``).

    Its smallest face is about 80 px; each ``upsample`` step halves that (and costs about 4x
    time). ``threshold`` is dlib's ``adjust_threshold``: 0 keeps dlib's own decision rule.
    """

    name = "dlib_hog"

    def __init__(self, upsample: int = 1, threshold: float = 0.0) -> None:
        import dlib

        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self._detector = dlib.get_frontal_face_detector()

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
        import dlib

        self.upsample = int(upsample)
        self.threshold = float(threshold)
        path = _face_models().cnn_face_detector_model_location()
        self._detector = dlib.cnn_face_detection_model_v1(path)

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


def make_detector(name: str, **kwargs: object) -> FaceDetector:
    """Instantiate the detector registered as ``name`` with its keyword options."""
    return DETECTORS.get(name)(**kwargs)
