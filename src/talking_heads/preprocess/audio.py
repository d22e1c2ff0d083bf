"""Audio: 16 kHz mono extraction with ffmpeg, and the Wav2Lip log-mel spectrogram.

The mel recipe is the one Wav2Lip (``hparams.py``, ``audio.py``) shares with EmoGen, SadTalker
and Video-Retalking: pre-emphasis 0.97; centred STFT with a Hann window, ``n_fft`` 800, hop 200,
window 800 (80 frames/s at 16 kHz); 80 Slaney mel bands over 55-7600 Hz; magnitude to dB as
``20 log10(max(1e-5, mel)) - 20``; symmetric normalisation
``clip(8 (S + 100) / 100 - 4, -4, 4)``. Wav2Lip pins librosa 0.7, whose STFT pads with
``reflect``; newer librosa defaults to zero padding, so the pad mode is set explicitly.

:func:`mel_windows` cuts the per-video-frame 80x16 mel chunks with each method's alignment.
:func:`syncnet_mfcc` is syncnet_python's audio front end (``python_speech_features.mfcc`` with
library defaults on int16-scale samples), and :func:`mfcc_windows` its 13x20 chunks. The
checks :func:`audio_stats`, :func:`is_silent` and :func:`probe_audio` give recipes the facts
behind per-clip notes (silent track, resampled or mixed-down source).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from talking_heads.utils.atomic import atomic_path
from talking_heads.utils.media import MediaError, ffmpeg_exe

SAMPLE_RATE = 16_000
INT16_SCALE = 32768.0  # float samples in [-1, 1] times this are int16 values (soundfile's scale)
DBFS_FLOOR = -200.0  # level reported for digital silence instead of -inf (keeps JSON finite)

# ffmpeg's own software resampler (swr) with its documented defaults, spelled out so that a
# build whose default changes (or that prefers soxr) cannot change our samples silently.
SWR_RESAMPLER = (
    "resampler=swr:filter_size=32:phase_shift=10:linear_interp=0:cutoff=0.97:dither_method=none"
)


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

    Resampling is pinned to ffmpeg's default software resampler (swr: windowed-sinc, filter size
    32, phase shift 10, cutoff 0.97, no dither; see :data:`SWR_RESAMPLER`), given explicitly so
    that neither an ffmpeg default change nor soxr can alter the samples; this is byte-identical
    to a plain ``-ar``. Channels are mixed down by ffmpeg's default matrix. Use
    :func:`probe_audio` first to record what was converted. Raises :class:`NoAudioStreamError`
    when ``src`` has no audio stream, ``RuntimeError`` when ffmpeg fails. The wav is written
    atomically.
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
            "-af",
            f"aresample={sample_rate}:{SWR_RESAMPLER}",
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


#: containers :func:`read_wav` (libsndfile) reads directly
SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg"})


def _sound_file_error(path: Path, error: Exception) -> MediaError:
    reason = str(error).rsplit(":", 1)[-1].strip().rstrip(".") or type(error).__name__
    return MediaError(f"{path}: not a readable audio file ({reason}); give a WAV file")


def check_audio(path: Path | str) -> Path:
    """``path`` if it exists and, for a WAV/FLAC/OGG file, its header is readable; else a
    :class:`FileNotFoundError` or :class:`~talking_heads.utils.media.MediaError` naming it.
    Other containers are decoded by ffmpeg when used."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such audio file")
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            soundfile.info(str(path))
        except Exception as error:  # libsndfile's "Format not recognised", truncated headers
            raise _sound_file_error(path, error) from error
    return path


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Samples as float32 in ``[-1, 1]`` (mixed down to mono) and the sample rate; an
    unreadable file is a :class:`~talking_heads.utils.media.MediaError` naming it."""
    import soundfile

    path = check_audio(path)
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:
        raise _sound_file_error(path, error) from error
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


# --- per-video-frame mel windows -------------------------------------------------------------

MelAlignment = Literal["inference", "training", "centred"]
MEL_ALIGNMENTS: tuple[str, ...] = ("inference", "training", "centred")


def mel_windows(
    mel: np.ndarray,
    num_frames: int,
    fps: float = 25.0,
    *,
    window: int = 16,
    alignment: MelAlignment = "inference",
    mel_rate: float = 80.0,
) -> np.ndarray:
    """Per-video-frame mel chunks ``(num_frames, num_mels, window)`` float32 from ``mel``.

    ``mel`` is ``(num_mels, columns)`` (e.g. :func:`melspectrogram`, 80 columns/s). Frame ``i``
    gets columns ``start_i .. start_i + window - 1``; ``int`` truncates toward zero, exactly as
    the upstream code does (``int(-3.2) == -3``):

    - ``"inference"``: Wav2Lip ``inference.py``, ``start = int(i * (80. / fps))``, the window
      starts *at* the frame; a window running past the end is replaced by the last ``window``
      columns (its tail rule; Wav2Lip then stops, so later frames here repeat that tail). The
      SyncNet expert's window for the 5 frames starting at ``i`` starts at the same column.
    - ``"training"``: Wav2Lip ``get_segmented_mels`` (generator input),
      ``start = int(80. * ((i - 1) / fps))``, one frame *before* the target frame. Wav2Lip
      drops samples whose window leaves the spectrogram (frame 0, the tail); here out-of-range
      columns are clamped to the first/last column instead.
    - ``"centred"``: SadTalker ``generate_batch.py``, ``start = int(80. * ((i - 2) / fps))``,
      centred on the frame, each column index clamped to ``[0, columns - 1]`` as SadTalker does.

    ``mel_rate`` is the spectrogram's column rate (80 = 16000 / hop 200). A spectrogram shorter
    than ``window`` is edge-replicated in every mode.
    """
    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise ValueError(f"expected a (num_mels, columns) spectrogram, got shape {mel.shape}")
    if alignment not in MEL_ALIGNMENTS:
        raise ValueError(f"unknown alignment {alignment!r}; choose from {MEL_ALIGNMENTS}")
    _check_window_args(num_frames, fps, window)
    columns = mel.shape[1]
    if columns == 0:
        raise ValueError("empty spectrogram")
    frames = np.arange(num_frames, dtype=np.float64)
    if alignment == "inference":
        starts = np.trunc(frames * (mel_rate / fps)).astype(np.int64)
        starts = np.minimum(starts, columns - window)
    else:
        lead = 1 if alignment == "training" else 2
        starts = np.trunc(mel_rate * ((frames - lead) / fps)).astype(np.int64)
    index = np.clip(starts[:, None] + np.arange(window), 0, columns - 1)
    return np.ascontiguousarray(np.take(mel, index, axis=1).transpose(1, 0, 2), dtype=np.float32)


def mfcc_windows(
    mfcc: np.ndarray,
    num_frames: int,
    fps: float = 25.0,
    window: int = 20,
    *,
    mfcc_rate: float = 100.0,
) -> np.ndarray:
    """SyncNet audio inputs ``(num_frames, num_ceps, window)`` float32 from ``mfcc``.

    ``mfcc`` is ``(num_ceps, columns)`` at ``mfcc_rate`` columns/s (:func:`syncnet_mfcc`: 100).
    Window ``v`` holds columns ``floor(v * mfcc_rate / fps)`` onwards: ``4v .. 4v + 19`` at
    25 fps, as syncnet_python slices ``cct[..., vframe*4 : vframe*4+20]`` for the 5 video frames
    starting at ``v``. syncnet_python only supports 25 fps. Raises ``ValueError`` when a window
    would run past the last column (see :func:`syncnet_window_count` for the usable count).
    """
    mfcc = np.asarray(mfcc)
    if mfcc.ndim != 2:
        raise ValueError(f"expected a (num_ceps, columns) array, got shape {mfcc.shape}")
    _check_window_args(num_frames, fps, window)
    starts = np.floor(np.arange(num_frames, dtype=np.float64) * mfcc_rate / fps).astype(np.int64)
    if num_frames and starts[-1] + window > mfcc.shape[1]:
        raise ValueError(
            f"{num_frames} windows need {starts[-1] + window} MFCC columns, have {mfcc.shape[1]}"
        )
    index = starts[:, None] + np.arange(window)
    return np.ascontiguousarray(np.take(mfcc, index, axis=1).transpose(1, 0, 2), dtype=np.float32)


def syncnet_window_count(
    num_video_frames: int,
    num_samples: int,
    *,
    sample_rate: int = SAMPLE_RATE,
    fps: float = 25.0,
    frames_per_window: int = 5,
) -> int:
    """How many 5-frame windows syncnet_python scores: ``min(frames, samples // 640) - 5``.

    (``lastframe = min_length - 5`` in ``SyncNetInstance.evaluate``; never negative.)
    """
    audio_frames = int(np.floor(num_samples * fps / sample_rate))
    return max(0, min(num_video_frames, audio_frames) - frames_per_window)


def _check_window_args(num_frames: int, fps: float, window: int) -> None:
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


# --- syncnet_python MFCC ---------------------------------------------------------------------


@dataclass(frozen=True)
class MfccParams:
    """``python_speech_features.mfcc`` defaults, as syncnet_python calls it.

    Rectangular window (no taper) of ``win_length_s`` every ``hop_length_s``; ``fmax`` ``None``
    (or 0) means Nyquist; ``lifter`` 0 disables liftering; ``append_energy`` replaces c0 with
    the log frame energy.
    """

    sample_rate: int = SAMPLE_RATE
    win_length_s: float = 0.025
    hop_length_s: float = 0.01
    num_ceps: int = 13
    num_filters: int = 26
    n_fft: int = 512
    fmin: float = 0.0
    fmax: float | None = None
    preemphasis: float = 0.97
    lifter: int = 22
    append_energy: bool = True

    def to_dict(self) -> dict:
        """Plain dict (for summaries)."""
        return asdict(self)


SYNCNET_MFCC = MfccParams()


def syncnet_mfcc(
    samples: np.ndarray, sample_rate: int = SAMPLE_RATE, params: MfccParams = SYNCNET_MFCC
) -> np.ndarray:
    """syncnet_python's MFCC: ``(num_ceps, frames)`` float64, 100 frames/s with the defaults.

    Reproduces ``python_speech_features.mfcc(signal, sample_rate)`` with library defaults:
    pre-emphasis (first sample kept); frames of ``round_half_up(0.025 sr)`` samples every
    ``round_half_up(0.01 sr)``, ``1 + ceil((n - len) / step)`` of them (one when ``n <= len``),
    the last zero-padded; power spectrum ``|rfft(frame, 512)|^2 / 512``; 26 triangular mel
    filters on integer FFT bins ``floor((nfft + 1) f / sr)``; ``log`` of the filter energies
    (zeros floored to machine epsilon); orthonormal DCT-II, first 13; lifter 22; c0 replaced by
    the log of the total frame power (epsilon-floored).

    Scale: syncnet_python feeds the raw int16 values from ``scipy.io.wavfile``, so this works
    on int16 scale. ``int16`` input is used as is; floating input must lie in ``[-1, 1]``
    (:func:`read_wav`) and is multiplied by 32768, which restores the int16 values exactly.
    Only c0 (log energy, shifted by ``2 log 32768``) and the epsilon floors depend on the
    scale. Returns float64 (transpose of the library's ``(frames, num_ceps)``); SyncNet itself
    casts to float32 (see :func:`mfcc_windows`).
    """
    if sample_rate != params.sample_rate:
        raise ValueError(f"expected {params.sample_rate} Hz audio, got {sample_rate} Hz")
    signal = _int16_scale(samples)
    if signal.size == 0:
        raise ValueError("no samples")
    emphasised = np.empty_like(signal)
    emphasised[0] = signal[0]
    emphasised[1:] = signal[1:] - params.preemphasis * signal[:-1]

    frame_len = _round_half_up(params.win_length_s * sample_rate)
    step = _round_half_up(params.hop_length_s * sample_rate)
    if frame_len < 1 or step < 1:
        raise ValueError("window and hop must be at least one sample")
    count = 1 if signal.size <= frame_len else 1 + -(-(signal.size - frame_len) // step)
    padded = np.zeros((count - 1) * step + frame_len)
    padded[: signal.size] = emphasised
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_len)[::step]

    power = np.square(np.abs(np.fft.rfft(frames, n=params.n_fft, axis=1))) / params.n_fft
    tiny = np.finfo(np.float64).eps
    energy = power.sum(axis=1)
    energy[energy == 0] = tiny
    bands = power @ _mfcc_filterbank(params).T
    bands[bands == 0] = tiny

    from scipy.fft import dct

    cepstra = dct(np.log(bands), type=2, axis=1, norm="ortho")[:, : params.num_ceps]
    if params.lifter > 0:
        n = np.arange(cepstra.shape[1])
        cepstra = cepstra * (1 + params.lifter / 2 * np.sin(np.pi * n / params.lifter))
    if params.append_energy:
        cepstra[:, 0] = np.log(energy)
    return np.ascontiguousarray(cepstra.T)


def _round_half_up(value: float) -> int:
    """Round to the nearest integer, halves away from zero, on the exact binary value."""
    return int(Decimal(value).to_integral_value(rounding=ROUND_HALF_UP))


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595 * np.log10(1 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700 * (10 ** (mel / 2595.0) - 1)


@lru_cache(maxsize=8)
def _mfcc_filterbank(params: MfccParams) -> np.ndarray:
    """Triangular filters ``(num_filters, n_fft // 2 + 1)`` on integer FFT bins (HTK mel)."""
    rate = params.sample_rate
    fmax = params.fmax or rate / 2
    if fmax > rate / 2:
        raise ValueError("fmax exceeds the Nyquist frequency")
    edges = np.linspace(_hz_to_mel(params.fmin), _hz_to_mel(fmax), params.num_filters + 2)
    bins = np.floor((params.n_fft + 1) * _mel_to_hz(edges) / rate)
    k = np.arange(params.n_fft // 2 + 1, dtype=np.float64)[None, :]
    left, centre, right = bins[:-2, None], bins[1:-1, None], bins[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where((k >= left) & (k < centre), (k - left) / (centre - left), 0.0)
        falling = np.where((k >= centre) & (k < right), (right - k) / (right - centre), 0.0)
    bank = rising + falling
    bank.setflags(write=False)
    return bank


def _int16_scale(samples: np.ndarray) -> np.ndarray:
    """1-D float64 samples on the int16 scale (see :func:`syncnet_mfcc`)."""
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {samples.shape}")
    if samples.dtype == np.int16:
        return samples.astype(np.float64)
    if not np.issubdtype(samples.dtype, np.floating):
        raise TypeError(f"expected int16 or float samples in [-1, 1], got {samples.dtype}")
    values = samples.astype(np.float64)
    if values.size and not (np.isfinite(values).all() and np.abs(values).max() <= 1.0):
        raise ValueError("float samples must be finite and within [-1, 1] (pass int16 instead)")
    return values * INT16_SCALE


def unit_scale(samples: np.ndarray) -> np.ndarray:
    """1-D float64 samples in ``[-1, 1]`` full scale (int16 divided by 32768)."""
    return _int16_scale(samples) / INT16_SCALE


# --- checks for per-clip notes ---------------------------------------------------------------


def dbfs(level: float) -> float:
    """``20 log10(level)`` of a full-scale RMS or peak level; ``DBFS_FLOOR`` for silence."""
    return float(20 * np.log10(level)) if level > 0 else DBFS_FLOOR


def _loudest_block_rms(unit: np.ndarray, block: int) -> float:
    """RMS of the loudest ``block``-sample stretch (the tail block counted as zero-padded)."""
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if unit.size == 0:
        return 0.0
    starts = np.arange(0, unit.size, block)
    sums = np.add.reduceat(np.square(unit), starts)
    return float(np.sqrt(sums.max() / min(block, unit.size)))


def audio_stats(samples: np.ndarray, sample_rate: int, *, block: int = 320) -> dict:
    """Level facts of mono samples (int16, or float in ``[-1, 1]``; other input raises).

    ``duration_s``; ``peak`` (max ``|x|``, 1.0 = full scale) and ``peak_dbfs``; ``rms_dbfs``
    over the whole clip; ``loudest_dbfs``, the RMS of the loudest ``block``-sample stretch
    (320 = 20 ms at 16 kHz; the one :func:`is_silent` uses). dBFS is ``20 log10`` of the level
    relative to full scale 1.0 (a full-scale square wave is 0 dBFS, a full-scale sine -3);
    digital silence reports :data:`DBFS_FLOOR` (-200) instead of ``-inf``.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    unit = unit_scale(samples)
    peak = float(np.abs(unit).max()) if unit.size else 0.0
    rms = float(np.sqrt(np.square(unit).mean())) if unit.size else 0.0
    return {
        "num_samples": int(unit.size),
        "sample_rate": int(sample_rate),
        "duration_s": unit.size / sample_rate,
        "peak": peak,
        "peak_dbfs": dbfs(peak),
        "rms_dbfs": dbfs(rms),
        "loudest_dbfs": dbfs(_loudest_block_rms(unit, block)),
    }


def is_silent(samples: np.ndarray, threshold_dbfs: float = -60.0, *, block: int = 320) -> bool:
    """Whether no ``block``-sample stretch (20 ms at 16 kHz) reaches ``threshold_dbfs`` RMS.

    Short-term RMS rather than the peak, so a lone click weighs little (a one-sample click
    peaking at -40 dBFS reads -65 dBFS over 320 samples), and rather than the whole-clip RMS,
    so a short utterance in a long recording still counts. Empty and all-zero signals are
    silent; so is any signal whose peak is below the threshold. Samples as in
    :func:`audio_stats` (int16, or float in ``[-1, 1]``; anything else raises).
    """
    unit = unit_scale(samples)
    if unit.size == 0 or not np.any(unit):
        return True
    return dbfs(_loudest_block_rms(unit, block)) < threshold_dbfs


_AUDIO_STREAM = re.compile(
    r"Stream #\d+:\d+\S*: Audio: (?P<codec>[^\s,]+)[^\n]*?, (?P<rate>\d+) Hz"
    r"(?:, (?P<layout>[^,\n]+))?"
)


def probe_audio(src: Path | str) -> dict | None:
    """The first audio stream's codec, original sample rate and channels, or ``None``.

    Parses ``ffmpeg -i`` (:func:`talking_heads.utils.media.ffmpeg_exe`); returns
    ``{"codec", "sample_rate", "channels", "channel_layout"}`` (``channels`` is ``None`` for a
    layout ffmpeg does not name), ``None`` when the file has no audio stream. Raises
    ``ValueError`` for a missing or unreadable file.
    """
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    info = result.stderr
    if "Stream #" not in info:
        raise ValueError(f"{src}: not a readable media file")
    match = _AUDIO_STREAM.search(info)
    if match is None:
        return None
    layout = (match.group("layout") or "").strip()
    return {
        "codec": match.group("codec"),
        "sample_rate": int(match.group("rate")),
        "channels": _channel_count(layout),
        "channel_layout": layout,
    }


def _channel_count(layout: str) -> int | None:
    counted = re.fullmatch(r"(\d+) channels?(?: \(.*\))?", layout)
    if counted:
        return int(counted.group(1))
    known = _ffmpeg_layouts().get(layout)
    if known is not None:
        return known
    if re.fullmatch(r"[A-Z0-9]+(\+[A-Z0-9]+)+", layout):
        return layout.count("+") + 1
    return None


@lru_cache(maxsize=1)
def _ffmpeg_layouts() -> dict[str, int]:
    """Channel counts of ffmpeg's named layouts (``ffmpeg -layouts``), e.g. ``5.1`` -> 6."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-layouts"], capture_output=True, text=True, check=False
    )
    text = result.stdout + result.stderr
    table = text.split("Standard channel layouts:", 1)[-1]
    layouts: dict[str, int] = {}
    for line in table.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] != "NAME":
            layouts[parts[0]] = parts[1].count("+") + 1
    return layouts


def conversion_note(info: dict | None, sample_rate: int = SAMPLE_RATE) -> str:
    """A per-clip note for what :func:`extract_audio` changes, e.g. ``audio resampled from
    8000 Hz to 16000 Hz``; empty when ``info`` (:func:`probe_audio`) is ``None`` or matches."""
    if not info:
        return ""
    notes = []
    if info.get("sample_rate") and info["sample_rate"] != sample_rate:
        notes.append(f"audio resampled from {info['sample_rate']} Hz to {sample_rate} Hz")
    channels = info.get("channels")
    if channels is not None and channels > 1:
        notes.append(f"audio mixed down from {channels} channels to mono")
    return "; ".join(notes)
