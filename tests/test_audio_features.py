"""Audio features: syncnet_python MFCC, Wav2Lip log-mel and windows, level checks, probing."""

from __future__ import annotations

import inspect
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from scipy.io import wavfile

from talking_heads.manifest import read_manifest
from talking_heads.preprocess.audio import (
    DBFS_FLOOR,
    SYNCNET_MFCC,
    MfccParams,
    audio_stats,
    conversion_note,
    extract_audio,
    is_silent,
    mel_windows,
    melspectrogram,
    mfcc_windows,
    probe_audio,
    read_wav,
    syncnet_mfcc,
    syncnet_window_count,
    write_wav,
)
from talking_heads.utils.media import ffmpeg_exe

psf = pytest.importorskip("python_speech_features")

# Both sides compute the same float64 recipe, so they agree to rounding (~1e-13 relative; in
# practice bit for bit). Cepstra on the int16 scale reach ~100 and c0 ~30, so the bound is
# 1e-5 absolute plus 1e-7 relative: at most 2e-5 on the largest values, and any real recipe
# difference (framing, bin rounding, lifter, scale) moves values by 1e-2 or more.
MFCC_TOL = {"rtol": 1e-7, "atol": 1e-5}


def _item(manifest: Path, clip_id: str) -> tuple[Path, dict]:
    table = read_manifest(manifest).set_index("clip_id")
    row = table.loc[clip_id].to_dict()
    return manifest.parent / row["path"], row


@pytest.fixture(scope="module")
def speech(demo_manifest: Path) -> tuple[np.ndarray, int]:
    """The demo corpus speech as scipy.io.wavfile reads it (int16), the way syncnet_python does."""
    path, row = _item(demo_manifest, "speech")
    rate, samples = wavfile.read(path)
    assert samples.dtype == np.int16 and rate == row["audio_rate"] == 16000
    return samples, rate


# --- syncnet_python MFCC ---------------------------------------------------------------------


def test_mfcc_params_are_the_library_defaults() -> None:
    defaults = {
        name: p.default
        for name, p in inspect.signature(psf.mfcc).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    ours = SYNCNET_MFCC
    assert (ours.sample_rate, ours.win_length_s, ours.hop_length_s) == (
        defaults["samplerate"],
        defaults["winlen"],
        defaults["winstep"],
    )
    assert (ours.num_ceps, ours.num_filters, ours.n_fft) == (
        defaults["numcep"],
        defaults["nfilt"],
        defaults["nfft"],
    )
    assert (ours.fmin, ours.fmax, ours.preemphasis, ours.lifter, ours.append_energy) == (
        defaults["lowfreq"],
        defaults["highfreq"],
        defaults["preemph"],
        defaults["ceplifter"],
        defaults["appendEnergy"],
    )
    assert np.array_equal(defaults["winfunc"](7), np.ones(7))  # rectangular, as documented


def test_syncnet_mfcc_matches_python_speech_features_on_speech(speech) -> None:
    samples, rate = speech
    reference = psf.mfcc(samples, rate)  # exactly syncnet_python's call
    ours = syncnet_mfcc(samples, rate)
    assert ours.dtype == np.float64
    assert ours.shape == (13, 1 + int(np.ceil((len(samples) - 400) / 160))) == reference.T.shape
    np.testing.assert_allclose(ours, reference.T, **MFCC_TOL)
    assert np.abs(reference).max() > 10  # real magnitudes, so the relative term matters
    assert abs(ours.shape[1] - len(samples) / 160) < 2  # 100 frames/s


@pytest.mark.parametrize("length", [1, 2, 399, 400, 401, 559, 560, 561, 1234, 16_007])
def test_syncnet_mfcc_framing_on_partial_steps(speech, length: int) -> None:
    samples, rate = speech
    start = len(samples) // 3  # inside the utterance, not leading silence
    clip = samples[start : start + length]
    expected_frames = 1 if length <= 400 else 1 + -(-(length - 400) // 160)
    ours = syncnet_mfcc(clip, rate)
    reference = psf.mfcc(clip, rate)
    assert ours.shape == (13, expected_frames) == reference.T.shape
    np.testing.assert_allclose(ours, reference.T, **MFCC_TOL)


def test_syncnet_mfcc_digital_silence_uses_the_epsilon_floor() -> None:
    samples = np.zeros(2000, dtype=np.int16)
    samples[1500:] = np.arange(500, dtype=np.int16)  # silence then a ramp
    ours = syncnet_mfcc(samples)
    np.testing.assert_allclose(ours, psf.mfcc(samples, 16000).T, **MFCC_TOL)
    assert ours[0, 0] == pytest.approx(np.log(np.finfo(float).eps))  # zero energy -> log(eps)


def test_syncnet_mfcc_int16_and_float_input_agree(speech, demo_manifest: Path) -> None:
    samples, rate = speech
    as_int = syncnet_mfcc(samples, rate)
    floats, float_rate = read_wav(_item(demo_manifest, "speech")[0])  # float32 in [-1, 1)
    assert float_rate == rate and np.array_equal(floats * 32768, samples)
    np.testing.assert_array_equal(syncnet_mfcc(floats, rate), as_int)
    # The int16 scale matters: fed [-1, 1] floats, the library's c0 is 2 ln 32768 lower.
    unit_scale = psf.mfcc(floats.astype(np.float64), rate).T
    np.testing.assert_allclose(unit_scale[1:], as_int[1:], atol=1e-6)
    assert np.median(as_int[0] - unit_scale[0]) == pytest.approx(2 * np.log(32768), abs=1e-6)


def test_syncnet_mfcc_other_parameters(speech) -> None:
    samples, _ = speech
    params = MfccParams(
        sample_rate=8000, num_ceps=20, fmax=3000.0, lifter=0, append_energy=False, n_fft=256
    )
    clip = samples[:9001]
    ours = syncnet_mfcc(clip, 8000, params)
    reference = psf.mfcc(
        clip, 8000, numcep=20, highfreq=3000, ceplifter=0, appendEnergy=False, nfft=256
    )
    assert ours.shape == (20, 1 + -(-(9001 - 200) // 80))
    np.testing.assert_allclose(ours, reference.T, **MFCC_TOL)


def test_syncnet_mfcc_rejects_ambiguous_input(speech) -> None:
    samples, rate = speech
    with pytest.raises(ValueError, match="within"):
        syncnet_mfcc(samples.astype(np.float64), rate)  # int16 values as floats
    with pytest.raises(TypeError):
        syncnet_mfcc(samples.astype(np.int32), rate)
    with pytest.raises(ValueError, match="16000"):
        syncnet_mfcc(samples, 22050)
    with pytest.raises(ValueError, match="1-D"):
        syncnet_mfcc(np.stack([samples, samples], axis=1), rate)
    with pytest.raises(ValueError, match="no samples"):
        syncnet_mfcc(np.zeros(0, dtype=np.int16), rate)


# --- Wav2Lip log-mel -------------------------------------------------------------------------


def _wav2lip_logmel(wav: np.ndarray) -> np.ndarray:
    """The published recipe with librosa keyword calls (independent of the module's code)."""
    import librosa

    y = wav.astype(np.float64)
    y = np.concatenate([y[:1], y[1:] - 0.97 * y[:-1]])  # pre-emphasis [1, -0.97]
    spectrum = librosa.stft(
        y=y, n_fft=800, hop_length=200, win_length=800, window="hann", center=True,
        pad_mode="reflect",
    )  # fmt: skip
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55.0, fmax=7600.0)
    db = librosa.amplitude_to_db(basis @ np.abs(spectrum), ref=1.0, amin=1e-5, top_db=None)
    return np.clip(8.0 * ((db - 20.0) + 100.0) / 100.0 - 4.0, -4.0, 4.0)


def test_melspectrogram_matches_librosa_recipe(demo_manifest: Path) -> None:
    wav, rate = read_wav(_item(demo_manifest, "speech")[0])
    mel = melspectrogram(wav, rate)
    assert mel.shape == (80, 1 + len(wav) // 200) and mel.dtype == np.float32
    np.testing.assert_allclose(mel, _wav2lip_logmel(wav), atol=1e-5)
    assert mel.min() >= -4 and mel.max() <= 4 and mel.max() > 0  # speech is well above floor


# --- windows ---------------------------------------------------------------------------------


def _ramp(columns: int, rows: int = 80) -> np.ndarray:
    """A spectrogram whose every entry is its column index, so windows show their columns."""
    return np.tile(np.arange(columns, dtype=np.float32), (rows, 1))


# 64064 samples (the demo speech): 321 mel columns, 100 video frames at 25 fps.
COLUMNS, FRAMES = 321, 100


@pytest.mark.parametrize(
    ("alignment", "frame", "columns"),
    [
        ("inference", 0, list(range(0, 16))),
        ("inference", 7, list(range(22, 38))),  # int(7 * 3.2) = 22
        ("inference", 50, list(range(160, 176))),
        ("inference", 95, list(range(304, 320))),  # 304 + 16 = 320 <= 321: still in range
        ("inference", 96, list(range(305, 321))),  # int(307.2) + 16 > 321: the last 16 columns
        ("inference", 99, list(range(305, 321))),
        ("training", 0, [0] * 4 + list(range(1, 13))),  # int(-3.2) = -3 -> -3..12, clamped
        ("training", 10, list(range(28, 44))),  # int(80 * 9 / 25) = int(28.8) = 28
        ("training", 99, list(range(313, 321)) + [320] * 8),  # int(313.6), end clamped
        ("centred", 0, [0] * 7 + list(range(1, 10))),  # int(-6.4) = -6 -> -6..9, clamped
        ("centred", 1, [0] * 4 + list(range(1, 13))),  # int(-3.2) = -3
        ("centred", 10, list(range(25, 41))),  # int(25.6) = 25
        ("centred", 99, list(range(310, 321)) + [320] * 5),  # int(310.4) = 310
    ],
)
def test_mel_windows_columns(alignment: str, frame: int, columns: list[int]) -> None:
    windows = mel_windows(_ramp(COLUMNS), FRAMES, 25.0, alignment=alignment)
    assert windows.shape == (FRAMES, 80, 16) and windows.dtype == np.float32
    assert windows[frame, 0].tolist() == columns
    assert (windows[frame] == windows[frame, :1]).all()  # every mel row cut alike


def _wav2lip_inference_chunks(mel: np.ndarray, fps: float) -> list[np.ndarray]:
    """Wav2Lip ``inference.py``'s chunk loop, restated."""
    chunks, step, i = [], 80.0 / fps, 0
    while True:
        start = int(i * step)
        if start + 16 > mel.shape[1]:
            chunks.append(mel[:, mel.shape[1] - 16 :])
            return chunks
        chunks.append(mel[:, start : start + 16])
        i += 1


def _sadtalker_chunk(mel: np.ndarray, i: int, fps: float) -> np.ndarray:
    """SadTalker ``generate_batch.py``'s per-frame chunk, restated."""
    start = int(80.0 * ((i - 2) / float(fps)))
    return mel[:, [min(max(c, 0), mel.shape[1] - 1) for c in range(start, start + 16)]]


def _wav2lip_training_chunk(mel: np.ndarray, i: int, fps: float) -> np.ndarray | None:
    """Wav2Lip ``get_segmented_mels`` for target frame ``i`` (None where it drops the sample)."""
    if i - 1 < 0:
        return None
    start = int(80.0 * ((i - 1) / float(fps)))
    chunk = mel[:, start : start + 16]
    return chunk if chunk.shape[1] == 16 else None


@pytest.mark.parametrize("fps", [25.0, 29.97, 30.0])
def test_mel_windows_agree_with_upstream_loops(demo_manifest: Path, fps: float) -> None:
    wav, rate = read_wav(_item(demo_manifest, "speech")[0])
    mel = melspectrogram(wav, rate)
    chunks = _wav2lip_inference_chunks(mel, fps)
    inference = mel_windows(mel, len(chunks), fps, alignment="inference")
    for i, chunk in enumerate(chunks):
        np.testing.assert_array_equal(inference[i], chunk)
    count = int(len(wav) / (rate / fps))
    centred = mel_windows(mel, count, fps, alignment="centred")
    training = mel_windows(mel, count, fps, alignment="training")
    kept = 0
    for i in range(count):
        np.testing.assert_array_equal(centred[i], _sadtalker_chunk(mel, i, fps))
        chunk = _wav2lip_training_chunk(mel, i, fps)
        if chunk is not None:
            np.testing.assert_array_equal(training[i], chunk)
            kept += 1
    assert kept >= count - 6  # only the edges are dropped upstream


def test_mel_windows_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="alignment"):
        mel_windows(_ramp(40), 3, alignment="center")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_mels"):
        mel_windows(np.zeros(40), 3)
    assert mel_windows(_ramp(40), 0).shape == (0, 80, 16)


def test_mfcc_windows_columns(speech) -> None:
    samples, rate = speech
    mfcc = syncnet_mfcc(samples, rate)
    count = syncnet_window_count(FRAMES, len(samples))
    assert count == min(FRAMES, len(samples) // 640) - 5 == 95
    ramp = _ramp(mfcc.shape[1], rows=13)
    windows = mfcc_windows(ramp, count)
    assert windows.shape == (95, 13, 20) and windows.dtype == np.float32
    for v in (0, 1, 47, 94):
        assert windows[v, 0].tolist() == list(range(4 * v, 4 * v + 20))
    real = mfcc_windows(mfcc, count)
    np.testing.assert_array_equal(real[94], mfcc[:, 376:396].astype(np.float32))
    with pytest.raises(ValueError, match="MFCC columns"):
        mfcc_windows(mfcc, FRAMES)  # window 99 needs columns 396..415 of 399
    assert syncnet_window_count(3, len(samples)) == 0


# --- level checks ----------------------------------------------------------------------------


def test_stats_and_silence_on_zeros() -> None:
    zeros = np.zeros(16_000, dtype=np.int16)
    stats = audio_stats(zeros, 16_000)
    assert stats["duration_s"] == 1.0 and stats["peak"] == 0.0
    assert stats["rms_dbfs"] == stats["peak_dbfs"] == stats["loudest_dbfs"] == DBFS_FLOOR
    assert is_silent(zeros) and is_silent(np.zeros(0, dtype=np.float32))


def test_stats_and_silence_on_quiet_noise() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1e-4, 32_000)  # -80 dBFS RMS (about 3 LSB of 16-bit)
    stats = audio_stats(noise, 16_000)
    assert stats["duration_s"] == 2.0
    assert stats["rms_dbfs"] == pytest.approx(-80.0, abs=0.2)
    assert -70 < stats["peak_dbfs"] < -60
    assert is_silent(noise) and not is_silent(noise, threshold_dbfs=-90.0)
    click = np.zeros(16_000)
    click[8000] = 0.01  # peak -40 dBFS, but one sample in a 20 ms block: -65 dBFS RMS
    assert audio_stats(click, 16_000)["peak_dbfs"] == pytest.approx(-40.0)
    assert is_silent(click)


def test_stats_and_silence_on_speech(speech) -> None:
    samples, rate = speech
    stats = audio_stats(samples, rate)
    assert stats["duration_s"] == pytest.approx(64064 / 16000)
    assert stats["peak"] == pytest.approx(np.abs(samples.astype(float)).max() / 32768)
    assert -40 < stats["rms_dbfs"] < stats["loudest_dbfs"] < stats["peak_dbfs"] <= 0
    assert not is_silent(samples)
    # The same words followed by 30 s of silence: overall RMS falls by 10 log10(length
    # ratio), the short-term check still hears them.
    padded = np.concatenate([samples, np.zeros(30 * rate, dtype=np.int16)])
    longer = audio_stats(padded, rate)
    ratio = len(padded) / len(samples)
    assert longer["rms_dbfs"] == pytest.approx(stats["rms_dbfs"] - 10 * np.log10(ratio))
    assert longer["loudest_dbfs"] == stats["loudest_dbfs"] and not is_silent(padded)
    assert is_silent(samples, threshold_dbfs=stats["loudest_dbfs"] + 0.1)


# --- probing and resampling ------------------------------------------------------------------


def _tone(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * hz * t)


def test_probe_audio_reports_the_original_rate(tmp_path: Path) -> None:
    mono = write_wav(tmp_path / "mono8k.wav", _tone(8000), 8000)
    info = probe_audio(mono)
    assert info == {
        "codec": "pcm_s16le",
        "sample_rate": 8000,
        "channels": 1,
        "channel_layout": "mono",
    }
    assert conversion_note(info) == "audio resampled from 8000 Hz to 16000 Hz"
    stereo = tmp_path / "stereo.wav"
    soundfile.write(str(stereo), np.stack([_tone(16000), _tone(16000)], 1), 16000, "PCM_16")
    info = probe_audio(stereo)
    assert info is not None and (info["sample_rate"], info["channels"]) == (16000, 2)
    assert conversion_note(info) == "audio mixed down from 2 channels to mono"
    assert conversion_note(probe_audio(write_wav(tmp_path / "ok.wav", _tone(16000)))) == ""


def test_probe_audio_on_a_file_without_audio(demo_manifest: Path, tmp_path: Path) -> None:
    bikes, row = _item(demo_manifest, "bikes")
    assert row["kind"] == "video" and pd.isna(row["audio_rate"])  # the manifest agrees
    assert probe_audio(bikes) is None
    assert conversion_note(None) == ""
    carphone, row = _item(demo_manifest, "carphone")
    info = probe_audio(carphone)
    assert info is not None and info["sample_rate"] == row["audio_rate"] == 16000
    with pytest.raises(ValueError, match="readable"):
        probe_audio(tmp_path / "missing.wav")


def _ffmpeg_wav(src: Path, dst: Path, *extra: str) -> np.ndarray | None:
    cmd = [ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-i", str(src), *extra, str(dst)]
    if subprocess.run(cmd, capture_output=True, check=False).returncode != 0:
        return None
    return wavfile.read(dst)[1]


def test_extract_audio_resamples_with_swr(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    source = write_wav(tmp_path / "in8k.wav", _tone(8000) + rng.normal(0, 0.01, 8000), 8000)
    out = extract_audio(source, tmp_path / "out.wav")
    rate, samples = wavfile.read(out)
    assert rate == 16000 and samples.dtype == np.int16 and abs(len(samples) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    assert np.argmax(spectrum) * rate / len(samples) == pytest.approx(440.0, abs=1.5)
    level = audio_stats(samples, rate)["rms_dbfs"]
    assert level == pytest.approx(20 * np.log10(np.sqrt(0.5**2 / 2 + 0.01**2)), abs=0.3)
    plain = _ffmpeg_wav(source, tmp_path / "plain.wav", "-ac", "1", "-ar", "16000")
    np.testing.assert_array_equal(samples, plain)  # the pin is ffmpeg's default resampler
    soxr = _ffmpeg_wav(
        source, tmp_path / "soxr.wav", "-af", "aresample=16000:resampler=soxr", "-ac", "1"
    )
    if soxr is not None:  # a build with soxr: the choice of resampler is visible in the samples
        assert len(soxr) != len(samples) or not np.array_equal(soxr, samples)
