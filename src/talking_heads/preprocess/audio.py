"""Audio: 16 kHz mono extraction with ffmpeg, and the Wav2Lip log-mel spectrogram.

The mel recipe is the one Wav2Lip (``hparams.py``, ``audio.py``) shares with EmoGen, SadTalker
and Video-Retalking: pre-emphasis 0.97; centred STFT with a Hann window, ``n_fft`` 800, hop 200,
window 800 (80 frames/s at 16 kHz); 80 Slaney mel bands over 55-7600 Hz; magnitude to dB as
``20 log10(max(1e-5, mel)) - 20``; symmetric normalisation
``clip(8 (S + 100) / 100 - 4, -4, 4)``. Wav2Lip pins librosa 0.7, whose STFT pads with
``reflect``; newer librosa defaults to zero padding, so the pad mode is set explicitly.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from talking_heads.utils.atomic import atomic_path
from talking_heads.utils.media import ffmpeg_exe

SAMPLE_RATE = 16_000


class NoAudioStreamError(ValueError):
    """The media file has no audio stream."""


@dataclass(frozen=True)
class MelParams:
    """Wav2Lip's mel hyper-parameters (``hparams.py``)."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 800
    hop_size: int = 200
    win_size: int = 800
    num_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0
    pad_mode: str = "reflect"

    def to_dict(self) -> dict:
        """Plain dict (for summaries)."""
        return asdict(self)


WAV2LIP_MEL = MelParams()


def extract_audio(src: Path | str, dst: Path | str, sample_rate: int = SAMPLE_RATE) -> Path:
    """Decode the first audio stream of ``src`` to a mono 16-bit PCM wav at ``sample_rate``.

    Raises :class:`NoAudioStreamError` when ``src`` has none, ``RuntimeError`` when ffmpeg fails.
    The wav is written atomically.
    """
    with atomic_path(dst) as tmp:
        cmd = [
            ffmpeg_exe(),
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-i",
            str(src),
            "-map",
            "0:a:0",
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(sample_rate),
            "-c:a",
            "pcm_s16le",
            "-f",
            "wav",
            str(tmp),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            message = result.stderr.strip()
            if "matches no streams" in message:
                raise NoAudioStreamError(f"{src}: no audio stream")
            raise RuntimeError(f"ffmpeg could not extract audio from {src}: {message[-500:]}")
    return Path(dst)


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Samples as float32 in ``[-1, 1]`` (mixed down to mono) and the sample rate."""
    import soundfile

    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return samples.mean(axis=1).astype(np.float32), int(rate)


def write_wav(path: Path | str, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write float samples in ``[-1, 1]`` as a mono 16-bit PCM wav, atomically."""
    import soundfile

    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    pcm = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")
    return Path(path)


def slice_frames(
    samples: np.ndarray, sample_rate: int, fps: float, start: int, end: int
) -> np.ndarray:
    """Samples under video frames ``[start, end)``, zero-padded when the audio is shorter."""
    first = round(start * sample_rate / fps)
    last = round(end * sample_rate / fps)
    out = np.zeros(max(0, last - first), dtype=np.float32)
    chunk = samples[first:last]
    out[: len(chunk)] = chunk
    return out


def num_mel_frames(num_samples: int, params: MelParams = WAV2LIP_MEL) -> int:
    """Mel frames of a centred STFT over ``num_samples`` samples: ``1 + n // hop``."""
    return 1 + num_samples // params.hop_size


def melspectrogram(
    samples: np.ndarray, sample_rate: int = SAMPLE_RATE, params: MelParams = WAV2LIP_MEL
) -> np.ndarray:
    """Wav2Lip's normalised log-mel spectrogram ``(num_mels, frames)`` float32 in ``[-4, 4]``."""
    import librosa
    from scipy.signal import lfilter

    if sample_rate != params.sample_rate:
        raise ValueError(f"expected {params.sample_rate} Hz audio, got {sample_rate} Hz")
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    emphasised = lfilter([1.0, -params.preemphasis], [1.0], samples)
    spectrum = librosa.stft(
        y=emphasised,
        n_fft=params.n_fft,
        hop_length=params.hop_size,
        win_length=params.win_size,
        window="hann",
        center=True,
        pad_mode=params.pad_mode,
    )
    basis = _mel_basis(params)
    mel = basis @ np.abs(spectrum)
    min_level = np.exp(params.min_level_db / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, mel)) - params.ref_level_db
    scale = 2 * params.max_abs_value
    normalised = scale * ((db - params.min_level_db) / -params.min_level_db) - params.max_abs_value
    return np.clip(normalised, -params.max_abs_value, params.max_abs_value).astype(np.float32)


_MEL_BASES: dict[MelParams, np.ndarray] = {}


def _mel_basis(params: MelParams) -> np.ndarray:
    import librosa

    if params not in _MEL_BASES:
        if params.fmax > params.sample_rate // 2:
            raise ValueError("fmax exceeds the Nyquist frequency")
        _MEL_BASES[params] = librosa.filters.mel(
            sr=params.sample_rate,
            n_fft=params.n_fft,
            n_mels=params.num_mels,
            fmin=params.fmin,
            fmax=params.fmax,
        )
    return _MEL_BASES[params]
