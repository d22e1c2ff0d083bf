"""LipGAN's audio front ends and per-frame windows.

- ``mel80x27`` (default): the ``fully_pythonic`` branch's features, Wav2Lip's log-mel
  (``audio_hparams.py`` = Wav2Lip's hparams: 80 bands, hop 200 at 16 kHz, 80 columns/s;
  :func:`talking_heads.preprocess.audio.melspectrogram`), windows of 27 columns (337.5 ms).
- ``mfcc12x35``: the master branch's MATLAB features (``preprocess/savemfcc.m`` → ``runmfcc``:
  16 kHz, 25 ms Hamming frames every 10 ms, pre-emphasis 0.97, 40 triangular mel filters over
  300-3700 Hz, 13 cepstra with lifter 22, c0 dropped → 12 rows at 100 columns/s), windows of
  35 columns (350 ms). :func:`matlab_mfcc` is a numpy port of that MATLAB MFCC routine
  (Wojcicki's ``mfcc.m`` as ``runmfcc`` calls it): an approximation, not bit-exact to MATLAB
  (MATLAB is not available to compare; ``runmfcc.m`` itself is not in the repository).

Windows are centred on their video frame, as upstream's ``batch_inference.py`` pairs the
35-step MFCC chunk starting at ``k·40 ms`` with the frame at ``k·40 ms + 175 ms``: frame ``f``
gets columns from ``floor(rate·(f + 0.5)/fps - size/2)`` (at 25 fps: ``4f - 16`` for MFCC).
Upstream skips the frames whose window leaves the audio; here out-of-range columns are clamped
to the first/last column so that every frame has a window.
"""

from __future__ import annotations

import math

import numpy as np

from talking_heads.preprocess.audio import SAMPLE_RATE, melspectrogram

#: (rows, columns, columns per second) of each audio input
FRONT_ENDS = {"mel80x27": (80, 27, 80.0), "mfcc12x35": (12, 35, 100.0)}


def matlab_mfcc(
    samples: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    frame_ms: float = 25.0,
    step_ms: float = 10.0,
    preemphasis: float = 0.97,
    band: tuple[float, float] = (300.0, 3700.0),
    filters: int = 40,
    ceps: int = 13,
    lifter: int = 22,
) -> np.ndarray:
    """The MATLAB MFCCs of ``savemfcc.m`` without c0: ``(ceps - 1, frames)`` float32.

    Samples in [-1, 1] are scaled to int16 range (``speech·2^15``), pre-emphasised, cut into
    non-padded frames, windowed with MATLAB's symmetric ``hamming``, |FFT| with the next power
    of two, HTK mel warping ``1127·ln(1 + f/700)`` of ``filters`` triangles, DCT-II with
    ``sqrt(2/M)`` scaling and the sinusoidal lifter. The filter-bank energies are floored at
    float64's eps before the log (MATLAB would give -inf on digital silence).
    """
    from scipy.signal import lfilter

    speech = np.asarray(samples, dtype=np.float64).reshape(-1) * 2.0**15
    nw = round(1e-3 * frame_ms * sample_rate)
    ns = round(1e-3 * step_ms * sample_rate)
    nfft = 2 ** math.ceil(math.log2(nw))
    k = nfft // 2 + 1
    speech = lfilter([1.0, -preemphasis], [1.0], speech)
    count = (len(speech) - nw) // ns + 1 if len(speech) >= nw else 0
    if count <= 0:
        return np.zeros((ceps - 1, 0), dtype=np.float32)
    index = np.arange(nw)[None, :] + ns * np.arange(count)[:, None]
    frames = speech[index] * np.hamming(nw)[None, :]
    magnitude = np.abs(np.fft.rfft(frames, nfft, axis=1)).T  # (K, frames)
    hz2mel = lambda hz: 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)
    mel2hz = lambda mel: 700.0 * np.exp(np.asarray(mel) / 1127.0) - 700.0
    freqs = np.linspace(0.0, 0.5 * sample_rate, k)
    low, high = hz2mel(band[0]), hz2mel(band[1])
    centres = mel2hz(low + np.arange(filters + 2) * ((high - low) / (filters + 1)))
    bank = np.zeros((filters, k))
    for m in range(filters):
        up = (freqs >= centres[m]) & (freqs <= centres[m + 1])
        bank[m, up] = (freqs[up] - centres[m]) / (centres[m + 1] - centres[m])
        down = (freqs >= centres[m + 1]) & (freqs <= centres[m + 2])
        bank[m, down] = (centres[m + 2] - freqs[down]) / (centres[m + 2] - centres[m + 1])
    energies = np.maximum(bank @ magnitude, np.finfo(np.float64).eps)
    n = np.arange(ceps)[:, None]
    dct = np.sqrt(2.0 / filters) * np.cos(n * (np.pi * (np.arange(1, filters + 1) - 0.5) / filters))
    cc = dct @ np.log(energies)
    cc *= (1.0 + 0.5 * lifter * np.sin(np.pi * np.arange(ceps) / lifter))[:, None]
    return cc[1:].astype(np.float32)


def features(samples: np.ndarray, sample_rate: int, front_end: str) -> np.ndarray:
    """The whole clip's features ``(rows, columns)`` for ``front_end``."""
    if front_end not in FRONT_ENDS:
        raise ValueError(
            f"unknown LipGAN audio input {front_end!r}; choose from {list(FRONT_ENDS)}"
        )
    if front_end == "mel80x27":
        return melspectrogram(samples, sample_rate)
    return matlab_mfcc(samples, sample_rate)


def window_starts(num_frames: int, fps: float, front_end: str) -> np.ndarray:
    """The first column of each frame's centred window (see the module docstring)."""
    _, size, rate = FRONT_ENDS[front_end]
    frames = np.arange(num_frames, dtype=np.float64)
    return np.floor(rate * (frames + 0.5) / fps - size / 2 + 1e-9).astype(np.int64)


def frame_windows(spectrum: np.ndarray, num_frames: int, fps: float, front_end: str) -> np.ndarray:
    """Per-frame windows ``(num_frames, rows, size)`` float32, columns clamped at the ends."""
    _, size, _ = FRONT_ENDS[front_end]
    if spectrum.shape[1] == 0:
        raise ValueError("no audio columns")
    starts = window_starts(num_frames, fps, front_end)
    index = np.clip(starts[:, None] + np.arange(size), 0, spectrum.shape[1] - 1)
    return np.ascontiguousarray(np.take(spectrum, index, axis=1).transpose(1, 0, 2), np.float32)


def num_frames(num_samples: int, sample_rate: int, fps: float) -> int:
    """Video frames the audio covers: ``floor(duration·fps)``."""
    return math.floor(num_samples * fps / sample_rate + 1e-9)
