"""LSE-D / LSE-C: lip-sync error distance and confidence with SyncNet (syncnet_python).

Reproduces Wav2Lip's ``evaluation/scores_LSE/SyncNetInstance_calc_scores.py`` (joonson/
syncnet_python's ``SyncNetInstance.evaluate``) with the ``calculate_scores_LRS.py`` protocol:

- video: every frame resized to 224x224 (``cv2.resize``, bilinear, on BGR uint8, as the
  script does on each frame it reads), fed as float BGR without normalisation, in windows
  of 5 consecutive frames (stride 1) to SyncNet's lip stream;
- audio: 16 kHz mono int16 (other rates and containers are converted by ffmpeg as the
  pipeline's ``ffmpeg -ac 1 -ar 16000`` does), python_speech_features MFCC (13 coefficients
  at 100 Hz, :func:`~talking_heads.preprocess.audio.syncnet_mfcc`), windows of 20 MFCC
  frames starting at 4 x the video frame index;
- ``min_length = min(frames, samples // 640)`` (25 fps and 16 kHz hard-coded upstream),
  ``lastframe = min_length - 5`` windows;
- distances: the audio features zero-padded by ``vshift = 15`` on both sides, Euclidean
  ``pairwise_distance`` (eps 1e-6, embeddings not normalised) of each video window against
  the 31 audio windows around it; ``mdist`` = mean over windows per offset;
  **LSE-D = min mdist**, **LSE-C = median(mdist) - min mdist**, AV offset = 15 - argmin.

Upstream writes the frames to JPEG files and reads them back; here frames stay in memory
(no JPEG round trip, so values can differ from a JPEG-based run by JPEG's loss; on the
same decoded frames they are equal), all windows run batched, and the 31 x N distances are
one tensor operation; the lip stream runs over runs of consecutive frames instead of
stacked 5-frame windows (:meth:`LSE.lip_embeddings`: identical values, a fifth of the
input copies). A video at another rate is first converted to 25 fps exactly as the
real-video pipeline (``run_pipeline.py``) converts every video, ``ffmpeg -r 25``
(:func:`~talking_heads.preprocess.decode.constant_rate_cfr_indices`: the same frames ffmpeg
keeps or repeats, without a re-encode); the audio is read by time and needs no change. A
video shorter than 6 frames (after the conversion) gives NaN. Weights: ``syncnet_v2.model``.

``mouth_sync_dlib`` (:class:`MouthSyncDlib`) is the offline variant: no network, the
correlation of dlib's mouth opening with the speech's loudness; not LSE.
"""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from talking_heads.metrics.base import METRICS, VideoMetric
from talking_heads.nets.syncnet import SyncNet, load_syncnet
from talking_heads.preprocess.decode import constant_rate_cfr_indices

__all__ = [
    "LSE",
    "MouthSyncDlib",
    "mouth_audio_sync",
    "sync_scores",
]

FPS = 25
SAMPLE_RATE = 16_000
VSHIFT = 15
WINDOW = 5
SIZE = 224


def _audio_int16(path: Path) -> np.ndarray:
    """16 kHz mono samples on the int16 scale (ffmpeg converts other rates/containers)."""
    from talking_heads.preprocess.audio import extract_audio, read_wav

    samples, rate = read_wav(path) if path.suffix.lower() == ".wav" else (None, 0)
    if samples is None or rate != SAMPLE_RATE:
        with tempfile.TemporaryDirectory() as folder:
            converted = extract_audio(path, Path(folder) / "audio.wav", SAMPLE_RATE)
            samples, rate = read_wav(converted)
    return np.round(samples.astype(np.float64) * 32768).astype(np.int16)


def sync_scores(lip: Tensor, audio: Tensor, vshift: int = VSHIFT) -> dict[str, float]:
    """LSE-D, LSE-C and the AV offset from window embeddings ``(N, D)`` of both streams."""
    width = 2 * vshift + 1
    padded = F.pad(audio, (0, 0, vshift, vshift))
    windows = padded.unfold(0, width, 1).transpose(1, 2)  # (N, 31, D)
    distances = (lip[:, None, :] - windows + 1e-6).norm(dim=2)  # pairwise_distance, eps 1e-6
    mdist = distances.mean(dim=0)
    minval, minidx = torch.min(mdist, 0)
    return {
        "lse_d": float(minval),
        "lse_c": float(torch.median(mdist) - minval),
        "av_offset": float(vshift - int(minidx)),
    }


@METRICS.register("lse")
class LSE(VideoMetric):
    """LSE-D, LSE-C and AV offset of each generated video against its speech (SyncNet)."""

    name: ClassVar[str] = "lse"
    outputs: ClassVar[tuple[str, ...]] = ("lse_d", "lse_c", "av_offset")
    higher_is_better: ClassVar[bool] = False  # LSE-D; LSE-C is higher-better (see reference)
    needs_reference: ClassVar[bool] = False
    inputs: ClassVar[frozenset[str]] = frozenset({"audio_path"})
    reference: ClassVar[str] = (
        "Wav2Lip evaluation/scores_LSE (syncnet_python SyncNetInstance.evaluate, "
        "calculate_scores_LRS.py protocol): frames resized to 224x224 BGR, 5-frame windows, "
        "python_speech_features MFCC 13 x 100 Hz, 20-frame windows at 4v, vshift 15, "
        "Euclidean distances; LSE-D = min mean distance (lower better), LSE-C = median - min "
        "(higher better), AV offset = 15 - argmin; 25 fps (other rates converted as "
        "ffmpeg -r 25), 16 kHz; syncnet_v2.model"
    )

    def __init__(self, network: SyncNet | None = None, batch_size: int = 32) -> None:
        self.network = (network or load_syncnet()).eval().requires_grad_(False)
        self.batch_size = int(batch_size)
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> LSE:
        self.device = torch.device(device)
        self.network.to(self.device)
        return self

    @staticmethod
    def frames_224(frames: Tensor) -> Tensor:
        """Float RGB ``(T, 3, H, W)`` in [0, 1] -> BGR 0-255 float ``(3, T, 224, 224)``."""
        import cv2

        rgb = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
        images = rgb.permute(0, 2, 3, 1).cpu().numpy()[..., ::-1]
        resized = np.stack([cv2.resize(np.ascontiguousarray(f), (SIZE, SIZE)) for f in images])
        return torch.from_numpy(resized).permute(3, 0, 1, 2).float()

    def lip_embeddings(self, video: Tensor, count: int) -> Tensor:
        """Lip embeddings of the ``count`` 5-frame windows of ``video`` ``(3, T, 224, 224)``.

        Only SyncNet's first convolution spans time (kernel 5, stride 1): running the lip
        stream over a run of frames gives every window's output at once, exactly the values
        of the windows run separately, without copying each frame into five windows. Runs of
        ``batch_size + 4`` frames overlap by 4.
        """
        out = []
        for start in range(0, count, self.batch_size):
            stop = min(count, start + self.batch_size)
            run = video[:, start : stop + WINDOW - 1].unsqueeze(0).to(self.device)
            features = self.network.netcnnlip(run)  # (1, 512, stop - start, 1, 1)
            features = features.squeeze(0).permute(1, 0, 2, 3).flatten(1)
            out.append(self.network.netfclip(features).float().cpu())
        return torch.cat(out)

    def embeddings(self, frames: Tensor, samples: np.ndarray) -> tuple[Tensor, Tensor]:
        """Lip and audio window embeddings, ``lastframe`` of each."""
        from talking_heads.preprocess.audio import syncnet_mfcc

        video = self.frames_224(frames)
        mfcc = torch.from_numpy(syncnet_mfcc(samples, SAMPLE_RATE)).float()[None, None]
        last = min(video.shape[1], len(samples) // 640) - WINDOW
        windows = mfcc.unfold(3, 20, 4)[..., :last, :]  # (1, 1, 13, last, 20)
        windows = windows.permute(3, 0, 1, 2, 4).reshape(last, 1, 13, 20)
        auds = [
            self.network.forward_aud(windows[i : i + 4 * self.batch_size].to(self.device))
            .float()
            .cpu()
            for i in range(0, last, 4 * self.batch_size)
        ]
        return self.lip_embeddings(video, last), torch.cat(auds)

    def compute_video(
        self, generated: Tensor, reference: Tensor | None, **inputs: Any
    ) -> dict[str, float]:
        """LSE-D, LSE-C and AV offset of one video (converted to 25 fps as ``ffmpeg -r 25``
        would); NaN if too short."""
        nan = dict.fromkeys(self.outputs, float("nan"))
        fps = inputs.get("fps")
        if fps is not None and abs(float(fps) - FPS) > 0.01:
            generated = generated[constant_rate_cfr_indices(len(generated), float(fps), FPS)]
        samples = _audio_int16(Path(inputs["audio_path"]))
        if min(len(generated), len(samples) // 640) - WINDOW < 1:
            return nan
        with torch.inference_mode():
            lip, audio = self.embeddings(generated, samples)
        return sync_scores(lip, audio)


#: dlib 68-point pairs across the inner lips (upper 61-63, lower 67-65)
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
#: fewest frames with a face and audio the correlation is computed on
MIN_SYNC_FRAMES = 10


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap of 68 landmarks over the distance between the eye centres."""
    gap = np.mean([np.linalg.norm(points[a] - points[b]) for a, b in INNER_LIP_PAIRS])
    eyes = np.linalg.norm(points[36:42].mean(axis=0) - points[42:48].mean(axis=0))
    return float(gap / eyes)


def frame_loudness(samples: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """RMS level in dBFS (:func:`~talking_heads.preprocess.audio.dbfs`) of the samples under
    each video frame; NaN for frames past the end of the audio."""
    from talking_heads.preprocess.audio import dbfs, unit_scale

    bounds = np.round(np.arange(num_frames + 1) * SAMPLE_RATE / fps).astype(int)
    audio = unit_scale(samples)
    out = np.full(num_frames, np.nan)
    for i, (start, stop) in enumerate(pairwise(bounds)):
        if start < stop <= len(audio):
            out[i] = dbfs(float(np.sqrt(np.mean(np.square(audio[start:stop])))))
    return out


def mouth_audio_sync(
    opening: np.ndarray, loudness: np.ndarray, vshift: int = VSHIFT
) -> dict[str, float]:
    """Correlation of mouth opening with audio level over offsets ``-vshift..vshift``.

    For each offset ``k`` the Pearson correlation of ``opening[t]`` with ``loudness[t - k]``
    over the frames where both are known; ``mouth_sync_corr`` is the best correlation,
    ``mouth_sync_conf`` the best minus the median (as LSE-C is the median minus the best
    distance), ``mouth_sync_offset`` the best ``k`` (positive: the audio comes first, as
    SyncNet's AV offset). NaN with fewer than ``MIN_SYNC_FRAMES`` common frames at some offset.
    """
    correlations = []
    for k in range(-vshift, vshift + 1):
        a = opening[max(k, 0) : len(opening) + min(k, 0)]
        b = loudness[max(-k, 0) : len(loudness) + min(-k, 0)]
        count = min(len(a), len(b))
        a, b = a[:count], b[:count]
        known = np.isfinite(a) & np.isfinite(b)
        if known.sum() < MIN_SYNC_FRAMES or a[known].std() == 0 or b[known].std() == 0:
            return dict.fromkeys(MouthSyncDlib.outputs, float("nan"))
        correlations.append(float(np.corrcoef(a[known], b[known])[0, 1]))
    values = np.array(correlations)
    best = int(np.argmax(values))
    return {
        "mouth_sync_corr": float(values[best]),
        "mouth_sync_conf": float(values[best] - np.median(values)),
        "mouth_sync_offset": float(best - vshift),
    }


@METRICS.register("mouth_sync_dlib")
class MouthSyncDlib(VideoMetric):
    """Offline lip-sync measure: how well the mouth's opening follows the speech's loudness.

    Not the survey's LSE (no audio-visual network: SyncNet's weights are not shipped by any
    package): per frame, the inner-lip gap of dlib's 68 landmarks (points 61-63 against
    67-65, over the distance between the eye centres) and the audio's RMS level in dB under
    that frame; their Pearson correlation at each offset of ``-15..15`` frames (SyncNet's
    ``vshift``) gives the best correlation (higher: mouth and speech move together), a
    confidence (best minus median, like LSE-C) and the offset of the best. Speech loudness
    only loosely follows mouth opening (closed-mouth consonants are loud), so values are
    modest even for real videos: compare methods with each other, never with LSE. Frames
    without a face are left out; videos at any frame rate are used as they are (the audio is
    cut per frame by time).
    """

    name: ClassVar[str] = "mouth_sync_dlib"
    outputs: ClassVar[tuple[str, ...]] = (
        "mouth_sync_corr",
        "mouth_sync_conf",
        "mouth_sync_offset",
    )
    higher_is_better: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    inputs: ClassVar[frozenset[str]] = frozenset({"audio_path"})
    reference: ClassVar[str] = (
        "NOT the survey LSE: Pearson correlation of the dlib 68-point inner-lip gap (61-67, "
        "62-66, 63-65 over the eye-centre distance) with the audio RMS level (dB) per frame, "
        "over offsets -15..15 frames; best correlation, best - median, offset of the best"
    )

    def __init__(self, detector: str = "dlib_hog", **detector_options: Any) -> None:
        from talking_heads.metrics.faces import FaceFinder

        self.faces = FaceFinder(detector, "dlib68", **detector_options)

    def to(self, device: torch.device | str) -> MouthSyncDlib:
        """dlib runs on the CPU whatever the device."""
        return self

    def compute_video(
        self, generated: Tensor, reference: Tensor | None, **inputs: Any
    ) -> dict[str, float]:
        """Correlation, confidence and offset of one video against its speech."""
        from talking_heads.metrics.faces import to_uint8

        points = self.faces(to_uint8(generated))
        opening = np.array([np.nan if p is None else mouth_opening(p) for p in points])
        samples = _audio_int16(Path(inputs["audio_path"]))
        fps = float(inputs.get("fps") or FPS)
        return mouth_audio_sync(opening, frame_loudness(samples, len(opening), fps))
