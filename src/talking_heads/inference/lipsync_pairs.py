"""Wav2Lip's lip-sync evaluation (``evaluation/gen_videos_from_filelist.py``): each pair is a
face clip re-synchronised to the speech of an audio-source clip.

The pair list is upstream's filelist when given (``lrs2.txt``, ``lrs3.txt``, ``lrw.txt``: one
``<audio source> <video>`` line per pair, names matched to our clip ids by their last
components), else one drawn with a fixed seed: each test clip's face with another test clip's
speech. A corpus with a single clip (the embedded demo) pairs it with its own speech rolled
by half its length, so that the mouth has to follow audio it was not filmed with; the pair
list says so.

Upstream's skip rules, each recorded with its reason in ``pairs.csv`` instead of silently:
a spectrogram with NaN, a video shorter than the audio's whole 16-column windows (the mel
windows stop at the last whole one: the protocol's ``audio_tail: false``), a face not found
(never for our preprocessed crops, which are the box). A method that takes an emotion
(EmoGen) gets the face clip's own (its manifest ``emotion``), else the protocol's
``emotion`` (default ``neutral``). The output is ``generated/<pair>.mp4``
(the face frames with the re-synthesised mouth, cut to the audio's windows), plus
``reference/<pair>.mp4`` (the real frames over the same span) and ``audio/<pair>.wav`` (the
driving speech) for the scorer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from talking_heads.models.interface import AudioClip, GenerationInputs, MethodDeclaration
from talking_heads.utils.atomic import atomic_path, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

LIPSYNC_PAIR_COLUMNS = ("pair", "audio_clip", "face_clip", "audio_shift_s", "status", "reason")


def read_filelist(path: Path | str, clip_ids: list[str]) -> pd.DataFrame:
    """Upstream's ``<audio source> <video>`` lines matched to our clip ids (a name matches the
    clip id it ends with); unmatched names are kept as skipped rows with the reason."""
    by_name = {}
    for clip_id in clip_ids:
        parts = str(clip_id).split("/")
        for k in range(1, len(parts) + 1):
            by_name.setdefault("/".join(parts[-k:]), clip_id)
    rows = []
    for index, line in enumerate(Path(path).read_text("utf-8").splitlines()):
        fields = line.split()
        if len(fields) != 2:
            continue
        audio, face = (by_name.get(name.removesuffix(".mp4")) for name in fields)
        status, reason = "", ""
        if audio is None or face is None:
            missing = [n for n, c in zip(fields, (audio, face), strict=True) if c is None]
            status, reason = "skipped", f"not among the evaluation clips: {', '.join(missing)}"
        rows.append((f"{index:05d}", audio or fields[0], face or fields[1], 0.0, status, reason))
    return pd.DataFrame(rows, columns=LIPSYNC_PAIR_COLUMNS)


def draw_lipsync_pairs(clips: pd.DataFrame, num_pairs: int, seed: int) -> pd.DataFrame:
    """Each clip's face with another clip's speech (seeded); one clip: its own, rolled."""
    rng = np.random.default_rng(seed)
    ids = [str(c) for c in clips["clip_id"]]
    rows = []
    for index, face in enumerate(ids[:num_pairs]):
        if len(ids) == 1:
            seconds = float(clips.iloc[0]["num_frames"]) / float(clips.iloc[0]["fps"]) / 2
            rows.append((f"{index:05d}", face, face, round(seconds, 3), "", ""))
            continue
        others = [c for c in ids if c != face]
        rows.append((f"{index:05d}", str(rng.choice(others)), face, 0.0, "", ""))
    return pd.DataFrame(rows, columns=LIPSYNC_PAIR_COLUMNS)


def pair_emotion(row: Any, protocol: Any) -> str:
    """The emotion a pair is generated with: the face clip's (its manifest ``emotion``),
    else the protocol's ``emotion`` setting (default ``neutral``)."""
    label = getattr(row, "emotion", None)
    if isinstance(label, str) and label:
        return label
    return str(protocol.extra.get("emotion", "neutral"))


def _speech(row: Any, shift_s: float) -> AudioClip:
    from talking_heads.preprocess.audio import read_wav

    samples, rate = read_wav(Path(row.shard_dir) / row.audio_path)
    if shift_s:
        samples = np.roll(samples, round(shift_s * rate))
    return AudioClip(samples=samples, sample_rate=rate)


def run_lipsync_pairs(
    generator: Any,
    protocol: Any,
    shards: list[Path],
    out_dir: Path,
    *,
    declaration: MethodDeclaration | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> dict[str, Any]:
    """Generate every usable pair (see the module docstring) into ``out_dir``."""
    from talking_heads.inference.protocols import _progress, _summary, evaluation_clips
    from talking_heads.preprocess.audio import write_wav
    from talking_heads.utils.frames import to_frames, to_tensor
    from talking_heads.utils.media import read_video, write_video

    options = declaration.resolve_options(protocol.options, strict=False) if declaration else {}
    clips = evaluation_clips(shards, protocol.split)
    clips = clips[clips["audio_path"].fillna("").astype(str) != ""]
    if protocol.pairs_csv:
        pairs = read_filelist(protocol.pairs_csv, [str(c) for c in clips["clip_id"]])
    else:
        pairs = draw_lipsync_pairs(clips, protocol.num_pairs, protocol.seed)
    rows = {str(r.clip_id): r for r in clips.itertuples()}
    frames_done, seconds = 0, 0.0
    with atomic_path(out_dir) as tmp:
        for folder in ("generated", "reference", "audio"):
            (tmp / folder).mkdir(parents=True)
        usable = pairs[pairs["status"] == ""]
        for pair in _progress(usable.itertuples(), len(usable), protocol.name):
            face_row, audio_row = rows[pair.face_clip], rows[pair.audio_clip]
            frames, fps = read_video(Path(face_row.shard_dir) / face_row.path)
            speech = _speech(audio_row, pair.audio_shift_s)
            inputs = GenerationInputs(face=to_tensor(frames), audio=speech, fps=float(fps))
            if declaration is not None and "emotion" in declaration.input_kinds:
                inputs.emotion = pair_emotion(face_row, protocol)
            try:
                count = len(generator.audio_windows(speech, float(fps)))
            except Exception as error:  # upstream: NaN mel -> skipped
                pairs.loc[pair.Index, ["status", "reason"]] = ["skipped", str(error)]
                continue
            whole = count - (0 if options.get("audio_tail", True) else 1)
            if len(frames) < whole:
                reason = f"video shorter than the audio ({len(frames)} < {whole} frames)"
                pairs.loc[pair.Index, ["status", "reason"]] = ["skipped", reason]
                continue
            start = time.perf_counter()
            generated = generator.reconstruct_clip(
                inputs, options, batch_size=batch_size, device=device, amp=device.startswith("cuda")
            )
            seconds += time.perf_counter() - start
            frames_done += len(generated)
            write_video(tmp / "generated" / f"{pair.pair}.mp4", to_frames(generated), fps, crf=0)
            write_video(
                tmp / "reference" / f"{pair.pair}.mp4", frames[: len(generated)], fps, crf=0
            )
            n = round(len(generated) * speech.sample_rate / fps)
            clip = np.zeros(n, dtype=np.float32)
            clip[: min(n, len(speech.samples))] = speech.samples[:n]
            write_wav(tmp / "audio" / f"{pair.pair}.wav", clip, speech.sample_rate)
            pairs.loc[pair.Index, "status"] = "ok"
        atomic_write_text(tmp / "pairs.csv", pairs.to_csv(index=False))
        records = [
            {"pair": r.pair, "clip_id": r.face_clip, "status": r.status, "reason": r.reason}
            for r in pairs.itertuples()
            if r.status != "ok"
        ]
        summary = _summary(protocol, records, frames_done, seconds, device)
        summary["pairs"] = {
            "listed": len(pairs),
            "generated": int((pairs["status"] == "ok").sum()),
            "skipped": {
                str(k): int(v)
                for k, v in pairs.loc[pairs["status"] == "skipped", "reason"]
                .str.split("(")
                .str[0]
                .str.strip()
                .value_counts()
                .items()
            },
        }
        if frames_done == 0:
            raise RuntimeError(f"{protocol.name}: no pair could be generated ({records[:3]})")
        atomic_write_json(tmp / "summary.json", summary)
        out = Path(out_dir)
        score_inputs = {"reference": [str(out / "reference")], "audio": [str(out / "audio")]}
        atomic_write_json(tmp / "score_inputs.json", score_inputs)
    return summary
