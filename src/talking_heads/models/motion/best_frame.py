"""The official demos' ``find_best_frame``: the driving frame whose face landmarks best match
the source's, used as the reference of relative motion."""

from __future__ import annotations

import logging

import numpy as np
import torch

from talking_heads.models.motion.animate import best_frame_index
from talking_heads.utils.frames import to_frames

log = logging.getLogger(__name__)


def face_landmarks(frames: np.ndarray, backend: str = "auto") -> list[np.ndarray | None]:
    """68 landmarks of the first (most confident) face in each uint8 frame, ``None`` without one.

    ``fan``: S3FD + 2D-FAN-4, what the official demos' ``find_best_frame`` uses (through
    face_alignment); ``dlib``: dlib's HOG detector + 68-point predictor (offline). ``auto``
    takes ``fan`` when both weight files are in the weights directory, else ``dlib``.
    """
    from talking_heads.preprocess.detect import make_detector
    from talking_heads.preprocess.landmarks import LANDMARKERS
    from talking_heads.weights import MissingWeightsError, resolve

    if backend == "auto":
        try:
            resolve("s3fd"), resolve("fan68")
            backend = "fan"
        except MissingWeightsError:
            backend = "dlib"
    if backend == "fan":
        detector, landmarker = make_detector("sfd"), LANDMARKERS.get("fan68")()
    elif backend == "dlib":
        detector, landmarker = make_detector("dlib_hog"), LANDMARKERS.get("dlib68")()
    else:
        raise ValueError(f"unknown landmark backend {backend!r} (auto, fan or dlib)")
    found: list[np.ndarray | None] = []
    for frame, boxes in zip(frames, detector(frames), strict=True):
        if len(boxes) == 0:
            found.append(None)
            continue
        best = boxes[np.argmax(boxes[:, 4])] if boxes.shape[1] > 4 else boxes[0]
        found.append(landmarker.detect(frame, best[None])[0])
    return found


def find_best_frame(source: torch.Tensor, driving: torch.Tensor, backend: str = "auto") -> int:
    """The driving frame whose normalised face landmarks are nearest the source's (frame 0
    when the source has no detectable face)."""
    source_landmarks = face_landmarks(to_frames(source[None]), backend)[0]
    if source_landmarks is None:
        log.warning("no face found in the source: best frame 0")
        return 0
    best = best_frame_index(source_landmarks, face_landmarks(to_frames(driving), backend))
    log.info("best-aligned driving frame: %d", best)
    return best
