"""Facial landmarks behind one interface: dlib's 68-point shape predictor."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from talking_heads.preprocess.detect import _face_models
from talking_heads.registry import Registry


class LandmarkDetector(ABC):
    """Locate landmarks inside given face boxes of one RGB frame."""

    num_points: int = 0

    @abstractmethod
    def detect(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``(k, num_points, 2)`` float32 ``x, y`` for the ``(k, >=4)`` boxes ``x1, y1, x2, y2``."""


LANDMARKERS: Registry[type[LandmarkDetector]] = Registry("landmark detector")


@LANDMARKERS.register("dlib68")
class Dlib68Landmarks(LandmarkDetector):
    """dlib's ``shape_predictor_68_face_landmarks`` (iBUG 300-W point order)."""

    num_points = 68

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(_face_models().pose_predictor_model_location())

    def detect(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """68 points per box (boxes use exclusive ``x2``/``y2`` as the detectors return them)."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        out = np.zeros((len(boxes), self.num_points, 2), dtype=np.float32)
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes)[:, :4]):
            rect = self._dlib.rectangle(int(x1), int(y1), int(x2) - 1, int(y2) - 1)
            shape = self._predictor(frame, rect)
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return out
