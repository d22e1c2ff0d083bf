"""Head-motion metrics: head-motion diversity and Beat Align, on Hopenet or dlib head poses.

Both read a head pose (yaw, pitch, roll in degrees) per frame:

- Hopenet (survey variants, ``head_motion_diversity``, ``beat_align``): deep-head-pose's
  ``test_on_video_dlib.py`` pipeline with our port :mod:`talking_heads.nets.hopenet`:
  the best-scoring face box, enlarged (width by half each side, height by 3/4 above and 1/4
  below), clipped, cropped; ``Resize(224)`` + ``CenterCrop(224)`` on the PIL crop, ToTensor,
  ImageNet mean/std; angle = ``sum(softmax(logits) * bin) * 3 - 99``.
- dlib (offline variants, ``*_dlib``): dlib's 68 landmarks and ``cv2.solvePnP`` (iterative)
  on the generic 6-point 3D face model of LearnOpenCV's "Head Pose Estimation using OpenCV
  and Dlib" (nose tip, chin, eye outer corners, mouth corners; points 30, 8, 36, 45, 48,
  54), expressed in camera axes (x right, y down, z away from the camera) so a frontal face
  has zero angles; focal length = frame width, principal point = frame centre, no
  distortion; Euler angles from ``cv2.RQDecomp3x3`` of the rotation.

Frames without a face have no pose: head-motion diversity uses the frames with one; Beat
Align interpolates the angles linearly over the missing frames (both need two posed frames,
else NaN).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from talking_heads.metrics.base import METRICS, VideoMetric
from talking_heads.metrics.faces import to_uint8

__all__ = [
    "BEAT_SIGMA2",
    "MOTION_SMOOTHING",
    "BeatAlign",
    "BeatAlignDlib",
    "HeadMotionDiversity",
    "HeadMotionDiversityDlib",
    "audio_beats",
    "beat_align_score",
    "dlib_head_pose",
    "head_motion_diversity",
    "hopenet_crop_box",
    "motion_beats",
]

#: Bailando's gaussian_filter sigma (frames) on the motion velocity
MOTION_SMOOTHING = 5.0
#: Bailando's 2 sigma^2 denominator is 2 * 9: sigma = 3 frames
BEAT_SIGMA2 = 9.0
#: librosa hop length: audio is loaded at fps * hop so onset frames are video frames
BEAT_HOP = 512

#: LearnOpenCV's generic 3D face model (mm; y up, z towards the viewer) for 68-point indices
FACE_MODEL_POINTS = {
    30: (0.0, 0.0, 0.0),  # nose tip
    8: (0.0, -330.0, -65.0),  # chin
    36: (-225.0, 170.0, -135.0),  # left eye, outer corner (image left)
    45: (225.0, 170.0, -135.0),  # right eye, outer corner
    48: (-150.0, -150.0, -125.0),  # left mouth corner
    54: (150.0, -150.0, -125.0),  # right mouth corner
}


# -------------------------------------------------------------------------------- statistics


def head_motion_diversity(angles: np.ndarray) -> float:
    """Mean over yaw/pitch/roll of the std over time (population, ``np.std``) of the angles
    ``(T, 3)``; frames with NaN angles are left out. NaN with fewer than 2 posed frames."""
    angles = np.asarray(angles, dtype=np.float64)
    posed = angles[~np.isnan(angles).any(axis=1)]
    if len(posed) < 2:
        return math.nan
    return float(posed.std(axis=0).mean())


def _fill_missing(angles: np.ndarray) -> np.ndarray | None:
    """Angles with NaN frames linearly interpolated (ends held); None with < 2 posed frames."""
    angles = np.asarray(angles, dtype=np.float64)
    ok = ~np.isnan(angles).any(axis=1)
    if ok.sum() < 2:
        return None
    if ok.all():
        return angles
    t = np.arange(len(angles))
    return np.stack([np.interp(t, t[ok], angles[ok, j]) for j in range(angles.shape[1])], 1)


def motion_beats(angles: np.ndarray, sigma: float = MOTION_SMOOTHING) -> np.ndarray:
    """Bailando's ``calc_db`` on head poses: the per-frame velocity ``||angles[t+1] -
    angles[t]||`` (length ``T - 1``), ``gaussian_filter(., sigma)``, and its local minima
    (``argrelextrema(., np.less)``) as motion-beat frame indices."""
    from scipy.ndimage import gaussian_filter
    from scipy.signal import argrelextrema

    angles = np.asarray(angles, dtype=np.float64)
    velocity = np.sqrt(np.sum((angles[1:] - angles[:-1]) ** 2, axis=1))
    return argrelextrema(gaussian_filter(velocity, sigma), np.less)[0]


def beat_align_score(
    music_beats: np.ndarray, motion_beats: np.ndarray, sigma2: float = BEAT_SIGMA2
) -> float:
    """Bailando's ``BA``: ``mean_b exp(-min_m (b - m)**2 / (2 * sigma2))`` over the music
    beats ``b``, ``m`` the motion beats (frame indices). NaN when either set is empty
    (upstream divides by zero or takes the min of nothing there)."""
    music = np.asarray(music_beats, dtype=np.float64).reshape(-1)
    motion = np.asarray(motion_beats, dtype=np.float64).reshape(-1)
    if len(music) == 0 or len(motion) == 0:
        return math.nan
    nearest = np.min((motion[None, :] - music[:, None]) ** 2, axis=1)
    return float(np.mean(np.exp(-nearest / 2.0 / sigma2)))


def audio_beats(samples: np.ndarray, sample_rate: int, fps: float) -> np.ndarray:
    """Bailando's music beats (``extractor.py``: ``get_hpss``, ``get_onset_strength``,
    ``get_onset_beat``) on audio resampled to ``round(fps * 512)`` Hz, so that librosa's
    onset frames (hop 512) are video frames: ``librosa.effects.hpss``, ``onset_strength(
    y=percussive, sr=sr, aggregate=np.median)``, ``beat_track(onset_envelope=..., sr=sr)``.
    Returns beat frame indices."""
    import librosa

    sr = round(fps * BEAT_HOP)
    y = np.asarray(samples, dtype=np.float32)
    if sample_rate != sr:
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=sr)
    _, percussive = librosa.effects.hpss(y)
    envelope = librosa.onset.onset_strength(y=percussive, sr=sr, aggregate=np.median)
    _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sr)
    return np.asarray(beats, dtype=np.int64)


# ------------------------------------------------------------------------------ pose sources


def hopenet_crop_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """deep-head-pose's crop of a detector box ``x1, y1, x2, y2`` (``x2``/``y2`` exclusive,
    as our detectors return them; upstream uses dlib's inclusive right/bottom): enlarge,
    clip to the frame, truncate to int."""
    x_min, y_min = float(box[0]), float(box[1])
    x_max, y_max = float(box[2]) - 1.0, float(box[3]) - 1.0
    bw, bh = abs(x_max - x_min), abs(y_max - y_min)
    x_min -= 2 * bw / 4
    x_max += 2 * bw / 4
    y_min -= 3 * bh / 4
    y_max += bh / 4
    x_min, y_min = max(x_min, 0), max(y_min, 0)
    x_max, y_max = min(width, x_max), min(height, y_max)
    return int(x_min), int(y_min), int(x_max), int(y_max)


def dlib_head_pose(frame: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll (degrees) of one face from its 68 points by ``cv2.solvePnP``."""
    import cv2

    height, width = frame.shape[:2]
    model = np.array(list(FACE_MODEL_POINTS.values()), dtype=np.float64) * (1.0, -1.0, -1.0)
    image = np.asarray(landmarks68, dtype=np.float64)[list(FACE_MODEL_POINTS)]
    camera = np.array(
        [[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]], np.float64
    )
    ok, rvec, _ = cv2.solvePnP(model, image, camera, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return np.full(3, np.nan)
    rotation, _ = cv2.Rodrigues(rvec)
    (pitch, yaw, roll), *_ = cv2.RQDecomp3x3(rotation)
    return np.array([yaw, pitch, roll], dtype=np.float64)


class _PoseMetric(VideoMetric):
    """Video metrics over a per-frame head pose ``(T, 3)`` (NaN rows where no face)."""

    def __init__(self) -> None:
        self.device = torch.device("cpu")

    @abstractmethod
    def poses(self, frames: Tensor) -> np.ndarray:
        """Yaw, pitch, roll in degrees ``(T, 3)`` for float frames ``(T, 3, H, W)``."""


class _HopenetPose(_PoseMetric):
    """Head pose by Hopenet on deep-head-pose's face crop."""

    def __init__(
        self,
        detector: str = "dlib_hog",
        batch_size: int = 64,
        network: torch.nn.Module | None = None,
        **detector_options: Any,
    ) -> None:
        from talking_heads import weights
        from talking_heads.nets.hopenet import load_hopenet

        if network is None:
            try:
                network = load_hopenet(True)
            except weights.MissingWeightsError as error:
                spec = weights.WEIGHTS.get("hopenet")
                raise weights.MissingWeightsError(
                    f"{self.name} needs the Hopenet weights {spec.filename!r} in "
                    f"{weights.weights_dir()}/ (download from {spec.url}); the offline "
                    f"variant {self.name}_dlib needs none"
                ) from error
        from talking_heads.preprocess.detect import make_detector

        self.network = network.eval().requires_grad_(False)
        self.batch_size = int(batch_size)
        self.detector = make_detector(detector, **detector_options)
        super().__init__()

    def to(self, device: torch.device | str) -> _HopenetPose:
        """Move Hopenet to ``device``."""
        self.device = torch.device(device)
        self.network.to(self.device)
        return self

    @staticmethod
    def crop_input(frame: np.ndarray, box: np.ndarray) -> Tensor:
        """The ``(3, 224, 224)`` network input for one face (deep-head-pose transforms)."""
        from PIL import Image
        from torchvision import transforms

        from talking_heads.nets.hopenet import IMAGENET_MEAN, IMAGENET_STD

        x1, y1, x2, y2 = hopenet_crop_box(box, frame.shape[1], frame.shape[0])
        image = Image.fromarray(np.ascontiguousarray(frame[y1:y2, x1:x2]))
        transform = transforms.Compose(
            [
                transforms.Resize(224),
                transforms.CenterCrop(224),
                transforms.ToTensor(),
                transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
            ]
        )
        return transform(image)

    @torch.no_grad()
    def angles(self, inputs: Tensor) -> Tensor:
        """Yaw, pitch, roll (degrees, float64) of normalised 224^2 crops ``(N, 3, 224, 224)``."""
        out = []
        for begin in range(0, len(inputs), self.batch_size):
            logits = self.network(inputs[begin : begin + self.batch_size].to(self.device))
            bins = torch.arange(logits[0].shape[1], device=self.device, dtype=torch.float32)
            out.append(
                torch.stack([(a.softmax(1) * bins).sum(1) * 3 - 99 for a in logits], 1).cpu()
            )
        return torch.cat(out).double() if out else torch.zeros((0, 3), dtype=torch.float64)

    def poses(self, frames: Tensor) -> np.ndarray:
        """Hopenet angles per frame (NaN rows where no face is detected)."""
        images = to_uint8(frames)
        out = np.full((len(images), 3), np.nan)
        found, crops = [], []
        for i, (image, boxes) in enumerate(zip(images, self.detector(images), strict=True)):
            if len(boxes):
                found.append(i)
                crops.append(self.crop_input(image, boxes[0]))
        if crops:
            out[found] = self.angles(torch.stack(crops)).numpy()
        return out


class _DlibPose(_PoseMetric):
    """Head pose by ``cv2.solvePnP`` on dlib's 68 landmarks (shared, cached face finder)."""

    def __init__(self, detector: str = "dlib_hog", **detector_options: Any) -> None:
        from talking_heads.metrics.faces import FaceFinder

        super().__init__()
        self.faces = FaceFinder(detector, "dlib68", **detector_options)

    def poses(self, frames: Tensor) -> np.ndarray:
        """solvePnP angles per frame (NaN rows where no face is detected)."""
        images = to_uint8(frames)
        out = np.full((len(images), 3), np.nan)
        for i, (image, points) in enumerate(zip(images, self.faces(images), strict=True)):
            if points is not None:
                out[i] = dlib_head_pose(image, points)
        return out


class _DiversityMixin:
    name: ClassVar[str]

    def compute_video(
        self, generated: Tensor, reference: Tensor | None, **inputs: Any
    ) -> dict[str, float]:
        """``{name: diversity}`` of the generated video's head poses."""
        return {self.name: head_motion_diversity(self.poses(generated))}  # type: ignore[attr-defined]


class _BeatAlignMixin:
    name: ClassVar[str]

    def compute_video(
        self, generated: Tensor, reference: Tensor | None, **inputs: Any
    ) -> dict[str, float]:
        """``{name: BA}`` of the generated video's head motion against its audio's beats."""
        from talking_heads.preprocess.audio import read_wav

        audio_path = inputs.get("audio_path")
        if audio_path is None:
            raise ValueError(f"{self.name} needs the video's audio (audio_path=...)")
        fps = float(inputs.get("fps") or 25.0)
        angles = _fill_missing(self.poses(generated))  # type: ignore[attr-defined]
        if angles is None:
            return {self.name: math.nan}
        samples, rate = read_wav(Path(audio_path))
        length = len(angles) - 1  # Bailando keeps the music beats within the velocity's frames
        music = audio_beats(samples, rate, fps)
        return {self.name: beat_align_score(music[music < length], motion_beats(angles))}


_DIVERSITY_DOC = (
    "SadTalker's head-motion diversity (\"std of head-motion feature embeddings extracted by "
    'Hopenet"; no code released): per video, the std over time (np.std, population) of each '
    "of yaw, pitch and roll in degrees, averaged over the 3 angles"
)
_BEAT_DOC = (
    "Bailando utils/beat_align_score.py BA on head motion: velocity ||d(yaw,pitch,roll)|| per "
    "frame, gaussian_filter sigma 5, motion beats argrelextrema(np.less); music beats as "
    "Bailando extractor.py (librosa hpss, onset_strength aggregate=np.median, beat_track) at "
    "sr = fps*512; BA = mean over music beats of exp(-min_m (t_b - t_m)^2 / (2*9))"
)


@METRICS.register("head_motion_diversity")
class HeadMotionDiversity(_DiversityMixin, _HopenetPose):
    """Head-motion diversity (SadTalker) on Hopenet head poses.

    SadTalker defines it as the "std of head-motion feature embeddings from generated frames
    extracted by Hopenet" and released no code; we read the embedding as Hopenet's (yaw,
    pitch, roll) in degrees and report the per-video std over time of each angle (population
    std), averaged over the 3 angles. Higher means more varied head motion. Poses come from
    deep-head-pose's ``test_on_video_dlib.py`` crop of the best face of ``detector`` (dlib
    HOG by default; upstream used dlib's MMOD CNN with confidence > 1, available as
    ``detector="dlib_cnn", threshold=1.0`` at about 0.5 s per frame on a CPU).
    """

    name: ClassVar[str] = "head_motion_diversity"
    higher_is_better: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    reference: ClassVar[str] = (
        _DIVERSITY_DOC + "; Hopenet hopenet_robust_alpha1.pkl on deep-head-pose "
        "test_on_video_dlib.py face crops (Resize 224, CenterCrop 224, ImageNet mean/std, "
        "sum(softmax * idx) * 3 - 99), faces from dlib HOG"
    )


@METRICS.register("head_motion_diversity_dlib")
class HeadMotionDiversityDlib(_DiversityMixin, _DlibPose):
    """Offline head-motion diversity: the same statistic (per-video std over time of yaw,
    pitch, roll, averaged) on head poses from dlib's 68 landmarks by ``cv2.solvePnP`` on
    LearnOpenCV's generic 6-point face model. Not comparable with the Hopenet numbers."""

    name: ClassVar[str] = "head_motion_diversity_dlib"
    higher_is_better: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    reference: ClassVar[str] = (
        "NOT the survey metric's pose source: "
        + _DIVERSITY_DOC
        + "; angles from dlib 68 landmarks + cv2.solvePnP on LearnOpenCV's 6-point model"
    )


@METRICS.register("beat_align")
class BeatAlign(_BeatAlignMixin, _HopenetPose):
    """Beat Align Score (Bailando's definition) of head motion against the speech audio.

    Motion signal: the head-pose velocity ``v_t = ||(yaw, pitch, roll)_{t+1} - (...)_t||``
    (degrees per frame, Hopenet poses as in ``head_motion_diversity``), smoothed by
    ``scipy.ndimage.gaussian_filter(v, 5)``; motion beats are its local minima
    (``argrelextrema(., np.less)``), the moments the head pauses. Audio beats: Bailando's
    extractor through librosa keyword arguments at ``sr = fps * 512`` so each onset frame is a
    video frame (``hpss``, ``onset_strength(aggregate=np.median)``, ``beat_track``), kept
    below ``T - 1`` like upstream's ``[:length]``. Then

        BA = (1 / |B|) * sum_{b in B} exp(-min_{m in M} (b - m)^2 / (2 * 9))

    over the audio beats ``B`` and motion beats ``M`` (frames): sigma = 3 frames as in
    Bailando (``/ 2 / 9``), averaged over *audio* beats (Bailando's direction; FACT/AIST++
    averages over motion beats instead). We keep Bailando's choices because SadTalker cites
    Bailando for this metric; sigma is in frames, so at 25 fps it is 0.12 s (Bailando's 60
    fps: 0.05 s). In [0, 1], higher is better. NaN without audio beats, motion beats, or two
    frames with a face.
    """

    name: ClassVar[str] = "beat_align"
    higher_is_better: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    inputs: ClassVar[frozenset[str]] = frozenset({"audio_path"})
    reference: ClassVar[str] = _BEAT_DOC + "; head poses by Hopenet (as head_motion_diversity)"


@METRICS.register("beat_align_dlib")
class BeatAlignDlib(_BeatAlignMixin, _DlibPose):
    """Offline Beat Align: :class:`BeatAlign`'s computation on head poses from dlib's 68
    landmarks and ``cv2.solvePnP`` (as ``head_motion_diversity_dlib``)."""

    name: ClassVar[str] = "beat_align_dlib"
    higher_is_better: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    inputs: ClassVar[frozenset[str]] = frozenset({"audio_path"})
    reference: ClassVar[str] = (
        "NOT the survey metric's pose source: "
        + _BEAT_DOC
        + "; head poses from dlib 68 landmarks + cv2.solvePnP"
    )
