"""Landmark metrics: AKD (FOMM pose-evaluation), its offline dlib variant, and LMD (ATVGnet).

- ``akd``: AliaksandrSiarohin/pose-evaluation ``extract.py`` (``extract_face_pose``) +
  ``cmp_kp.py``. ``face_alignment.FaceAlignment(LandmarksType._2D, flip_input=False)``:
  the S3FD detector and 2D-FAN-4 (our ports, :mod:`talking_heads.preprocess.detect` and
  :mod:`talking_heads.preprocess.landmarks`, files ``s3fd-619a316812.pth`` and
  ``2DFAN4-11f355bf06.pth.tar`` as face_alignment 1.5.0 loads them), no flipped second pass,
  68 points of the first (best-scoring) face, or None. Per frame the mean absolute coordinate
  difference over the 68x2 values (L1 per coordinate, not a Euclidean distance), then the
  mean over frames. cmp_kp.py skips frames whose generated detection is None; a reference
  frame without a face would make it fail, here both are NaN (skipped and counted by the
  scorer). pose-evaluation reads the frames as stored, 256x256 model outputs
  (``--image_shape 256,256``); frames of another size are resized to 256x256 first (area
  averaging down, bilinear up), so the value is in pixels of a 256x256 frame.
- ``akd_dlib``: the same computation on dlib's HOG detector and 68-point shape predictor from
  face-recognition-models, for runs without the FAN/S3FD files. Not the survey's AKD: dlib's
  points differ from FAN's systematically.
- ``lmd``: lelechen63/ATVGnet ``evaluation_matrix.py`` (``generating_landmark_lips`` +
  ``compare_landmarks``): the frame in grayscale (``cv2.cvtColor(BGR2GRAY)`` of the frame
  file), dlib's ``get_frontal_face_detector()(gray, 1)`` and
  ``shape_predictor_68_face_landmarks``; the mouth points 48-67 (imutils' ``mouth``, 20
  points) of each side centred on their own centroid; per frame the sum over the 20 points of
  the Euclidean distance, then the mean over frames; frames without a face on either side are
  skipped. LMD is in pixels of the frames as scored, so it grows with the resolution (twice
  the size, about twice the LMD): the scoring protocol fixes the size, and only values at the
  same size compare. With several faces ATVGnet keeps the last of dlib's detections (the
  lowest-scoring); we keep the best-scoring one, the same face whenever one face is found.

Detection and landmarks run batched where the backend allows it (S3FD on batches of frames on
the GPU when there is one); AKD's faces are shared with the other face metrics
(:class:`~talking_heads.metrics.faces.FaceFinder`), so each frame is detected once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from talking_heads.metrics.base import METRICS, Metric
from talking_heads.metrics.faces import FaceFinder, to_uint8

__all__ = ["AKD", "LMD", "AKDDlib", "dlib_gray_landmarks", "keypoint_distance", "mouth_distance"]

MOUTH = slice(48, 68)
AKD_SIZE = 256


def keypoint_distance(reference: np.ndarray | None, generated: np.ndarray | None) -> float:
    """pose-evaluation's per-frame AKD: mean |kp_gt - kp_gen| over points and coordinates."""
    if reference is None or generated is None:
        return float("nan")
    return float(np.mean(np.abs(np.asarray(reference, np.float64) - generated)))


def mouth_distance(reference: np.ndarray | None, generated: np.ndarray | None) -> float:
    """ATVGnet's per-frame LMD: sum over the centred mouth points of the Euclidean distance."""
    if reference is None or generated is None:
        return float("nan")
    ref = np.asarray(reference, np.float64)[MOUTH]
    gen = np.asarray(generated, np.float64)[MOUTH]
    ref = ref - ref.mean(axis=0)
    gen = gen - gen.mean(axis=0)
    return float(np.sum(np.linalg.norm(ref - gen, axis=1)))


def dlib_gray_landmarks(frames: np.ndarray, upsample: int = 1) -> list[np.ndarray | None]:
    """dlib HOG detection + 68 points on grayscale ``(N, H, W)`` uint8 frames, as ATVGnet.

    ``detector(gray, upsample)``, the best-scoring face, ``predictor(gray, rect)``; None where
    no face is found. Uses the process-wide dlib models of :mod:`talking_heads.preprocess`.
    """
    from talking_heads.preprocess.detect import dlib_model

    detector, predictor = dlib_model("hog"), dlib_model("shape68")
    out: list[np.ndarray | None] = []
    for gray in frames:
        gray = np.ascontiguousarray(gray, dtype=np.uint8)
        rects, scores, _ = detector.run(gray, upsample, 0.0)
        if len(rects) == 0:
            out.append(None)
            continue
        shape = predictor(gray, rects[int(np.argmax(scores))])
        out.append(np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64))
    return out


class _LandmarkMetric(Metric):
    """68 landmarks of both sides per frame, compared by :meth:`distance`."""

    higher_is_better: ClassVar[bool] = False
    #: frames are resized to this square size first (None: as scored)
    size: ClassVar[int | None] = None

    @staticmethod
    def distance(reference: np.ndarray | None, generated: np.ndarray | None) -> float:
        raise NotImplementedError

    def points(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """68 points per uint8 RGB frame ``(N, H, W, 3)``, None where no face is found."""
        raise NotImplementedError

    def _images(self, frames: Tensor) -> np.ndarray:
        if self.size is not None and tuple(frames.shape[-2:]) != (self.size, self.size):
            down = frames.shape[-1] >= self.size and frames.shape[-2] >= self.size
            frames = F.interpolate(
                frames.float(),
                size=(self.size, self.size),
                mode="area" if down else "bilinear",
                **({} if down else {"align_corners": False}),
            )
        return to_uint8(frames)

    def __call__(self, generated: Tensor, reference: Tensor | None, **inputs: Any) -> Tensor:
        """Per-frame distance; NaN where either side has no detected face."""
        if reference is None:
            raise ValueError(f"{self.name} compares against reference frames; none given")
        self.check_pair(generated, reference)
        gen = self.points(self._images(generated))
        ref = self.points(self._images(reference))
        values = [self.distance(r, g) for r, g in zip(ref, gen, strict=True)]
        return torch.tensor(values, dtype=torch.float64, device=generated.device)


@METRICS.register("akd")
class AKD(_LandmarkMetric):
    """Average keypoint distance, FOMM pose-evaluation (S3FD + 2D-FAN-4, 256x256).

    The weights are resolved (and checked) when the metric is built: without them a
    :class:`~talking_heads.weights.MissingWeightsError` names the file, its URL and where to
    put it. The networks run on ``device`` (``auto``: CUDA when available).
    """

    name: ClassVar[str] = "akd"
    size: ClassVar[int | None] = AKD_SIZE
    reference: ClassVar[str] = (
        "AliaksandrSiarohin/pose-evaluation extract.py (face_alignment 2D-FAN-4 68 points, "
        "flip_input=False, SFD detector, first face, frames at 256x256) + cmp_kp.py: per "
        "frame mean(|kp_gt - kp_gen|) over 68x2 coordinates (L1, not Euclidean), frames "
        "without a detection skipped, mean over frames; face_alignment 1.5.0 weights"
    )
    distance = staticmethod(keypoint_distance)

    def __init__(self, device: str = "auto") -> None:
        self._build(device)

    def _build(self, device: str) -> None:
        self.faces = FaceFinder(
            "sfd", "fan68", landmark_options={"device": device, "flip": False}, device=device
        )

    def to(self, device: torch.device | str) -> AKD:
        """Run detection and landmarks on ``device`` (reloads the networks if it changes)."""
        target, current = torch.device(device), self.faces.detector.device
        if target.type != current.type or (target.index or 0) != (current.index or 0):
            self._build(str(target))
        return self

    def points(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """FAN's 68 points of the first S3FD face per frame."""
        return self.faces(frames)


@METRICS.register("akd_dlib")
class AKDDlib(_LandmarkMetric):
    """AKD's computation on dlib HOG + 68-point landmarks (offline; not the survey's AKD)."""

    name: ClassVar[str] = "akd_dlib"
    size: ClassVar[int | None] = AKD_SIZE
    reference: ClassVar[str] = (
        "NOT the survey's AKD: pose-evaluation's cmp_kp.py formula (mean |kp_gt - kp_gen| "
        "over 68x2 coordinates at 256x256, undetected frames skipped) on dlib HOG (upsample "
        "1) + shape_predictor_68 landmarks (face-recognition-models) instead of 2D-FAN-4 + "
        "SFD; values are not comparable with published AKD"
    )
    distance = staticmethod(keypoint_distance)

    def __init__(self) -> None:
        self.faces = FaceFinder("dlib_hog", "dlib68")

    def points(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """dlib's 68 points of the best HOG face per frame."""
        return self.faces(frames)


@METRICS.register("lmd")
class LMD(_LandmarkMetric):
    """Mouth landmark distance, ATVGnet's definition (dlib 68 points on grayscale frames)."""

    name: ClassVar[str] = "lmd"
    reference: ClassVar[str] = (
        "lelechen63/ATVGnet evaluation_matrix.py: dlib frontal face detector (upsample 1) + "
        "shape_predictor_68 on the cv2 grayscale frame, mouth points 48-67 each centred on "
        "its own centroid, per frame the sum of the 20 Euclidean distances (pixels of the "
        "frames as scored: resolution-dependent), mean over frames; frames without a face on "
        "either side skipped"
    )
    distance = staticmethod(mouth_distance)

    def points(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """dlib's 68 points on each frame's cv2 grayscale (BT.601, as ``BGR2GRAY``)."""
        import cv2

        return dlib_gray_landmarks(np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]))
