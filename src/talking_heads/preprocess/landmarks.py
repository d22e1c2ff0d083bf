"""Facial landmarks behind one interface: dlib's 68-point shape predictor (``dlib68``) or
face-alignment's 2D-FAN-4 (``fan68``, our PyTorch port; torch is imported only when built).

Both return the iBUG 300-W 68-point order in frame pixels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from talking_heads.preprocess.detect import dlib_model
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
        self._predictor = dlib_model("shape68")

    def detect(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """68 points per box (boxes use exclusive ``x2``/``y2`` as the detectors return them)."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        out = np.zeros((len(boxes), self.num_points, 2), dtype=np.float32)
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes)[:, :4]):
            rect = self._dlib.rectangle(int(x1), int(y1), int(x2) - 1, int(y2) - 1)
            shape = self._predictor(frame, rect)
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return out


@LANDMARKERS.register("fan68")
class FAN68Landmarks(LandmarkDetector):
    """face-alignment's 2D-FAN-4 (``2DFAN4-11f355bf06.pth.tar``) on ``device``.

    Reproduces face_alignment 1.5.0's ``FaceAlignment.get_landmarks_from_image`` for given
    boxes (see :mod:`talking_heads.nets.fan`): the box-derived 256x256 crop,
    heatmaps summed with the mirrored crop's (``flip``, upstream's default) and the
    quarter-cell argmax refinement; points are truncated to integers like upstream's unless
    ``integer_coords`` is False. ``device`` is ``auto``, ``cpu`` or ``cuda``. The weights are
    resolved and verified on construction.
    """

    num_points = 68

    def __init__(
        self, device: str = "auto", flip: bool = True, integer_coords: bool = True
    ) -> None:
        from talking_heads.nets import load_pretrained, resolve_device
        from talking_heads.nets.fan import FAN

        self.device = resolve_device(device)
        self.flip = bool(flip)
        self.integer_coords = bool(integer_coords)
        self._net = load_pretrained(FAN, "fan68").to(self.device)

    def detect(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """68 points per box (boxes ``x1, y1, x2, y2`` used as given, as upstream does)."""
        from talking_heads.nets.fan import fan_landmarks

        return fan_landmarks(
            self._net, frame, boxes, flip=self.flip, integer_coords=self.integer_coords
        )
