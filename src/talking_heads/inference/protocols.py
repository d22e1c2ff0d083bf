"""Evaluation protocols as named configs (``configs/protocol/<name>.yaml``).

A protocol declares the method ``families`` it applies to and the generation ``options`` it
fixes (applied where a method declares them); each item hands a method the inputs it
declares (:mod:`talking_heads.models.interface`), so no protocol names a method.

- ``fomm_reconstruction``: FOMM's video reconstruction (``reconstruction.py``): each test clip
  re-generated from its own signals (:func:`run_reconstruction`; motion transfer: from its
  frame 0 with absolute motion).
- ``lipsync_pairs``: Wav2Lip's evaluation: face clips re-synchronised to other clips' speech
  (:mod:`talking_heads.inference.lipsync_pairs`).
- ``pairs_same_id``: the DaGAN/MCNet harness's same-identity frame pairs: each pair's driving
  frame generated from its source frame of the same clip, absolute motion
  (:func:`run_pairs`). The pair list is DaGAN's ``vox_evaluation.csv`` when given, else one
  drawn the same way with a fixed seed (:func:`draw_pairs`).

Both write what the scoring stage reads, atomically, plus ``summary.json`` naming the
protocol and ``score_inputs.json`` naming the references, speech and source portraits the
scorer compares against (``talking-heads score --inputs-from``); a clip or pair that cannot
be used is skipped with its reason recorded.
"""

from __future__ import annotations

import csv
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from talking_heads.config import config_names, load_named
from talking_heads.manifest import read_manifest
from talking_heads.models.interface import (
    FAMILIES,
    GenerationInputs,
    InputError,
    MethodDeclaration,
)
from talking_heads.utils.atomic import atomic_path, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("pair", "clip_id", "source_frame", "driving_frame", "status", "reason")


@dataclass(frozen=True)
class Protocol:
    """A named evaluation protocol (the fields of its YAML file)."""

    name: str
    kind: Literal["reconstruction", "pairs", "lipsync_pairs"]
    label: str
    families: list[str] = field(default_factory=lambda: ["motion-transfer"])
    options: dict[str, Any] = field(default_factory=dict)
    split: str | None = "test"
    max_clips: int | None = None
    pairs_csv: str | None = None
    num_clips: int = 100
    num_pairs: int = 2083
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def protocol_names() -> list[str]:
    """The protocols defined in ``configs/protocol``."""
    return config_names("protocol")


def load_protocol(name: str, **overrides: Any) -> Protocol:
    """The protocol ``name`` from its YAML file, with ``overrides`` (``None`` values ignored);
    keys the schema lacks are kept in ``extra``."""
    return load_named("protocol", name, Protocol, overrides, extra_field="extra")


def applies_to(protocol: Protocol, family: str) -> bool:
    """Whether ``protocol`` evaluates methods of ``family``."""
    return family in protocol.families


def evaluation_clips(shards: list[Path], split: str | None) -> pd.DataFrame:
    """``ok`` video rows of the shards' manifests (of ``split`` when given), with ``shard``
    set to the shard folder, sorted by clip id."""
    frames = []
    for shard in shards:
        manifest = read_manifest(Path(shard) / "manifest.parquet")
        rows = manifest[(manifest["status"] == "ok") & (manifest["kind"] == "video")].copy()
        if split is not None:
            rows = rows[rows["split"] == split]
        rows["shard_dir"] = str(shard)
        frames.append(rows)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if table.empty:
        raise RuntimeError(f"no usable clips in {[str(s) for s in shards]} (split={split})")
    return table.sort_values("clip_id", kind="stable").reset_index(drop=True)


def clip_file_name(clip_id: str) -> str:
    """A clip id as one file name (``/`` would nest folders the scorer does not search)."""
    return clip_id.replace("/", "__")


# -- pair lists ----------------------------------------------------------------------------


def draw_pairs(clips: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Same-id pairs drawn as DaGAN's ``create_same_id_test_set`` draws them, seeded.

    ``num_clips`` clips without replacement (all when fewer), then per pair one of them and
    two distinct frames of it. Clips of one frame cannot give a pair and are left out first.
    """
    rng = np.random.default_rng(protocol.seed)
    usable = clips[clips["num_frames"].astype(int) >= 2]
    if usable.empty:
        raise RuntimeError("no clip has two frames to pair")
    ids = usable["clip_id"].to_numpy()
    chosen = rng.choice(ids, size=min(protocol.num_clips, len(ids)), replace=False)
    lengths = dict(zip(usable["clip_id"], usable["num_frames"].astype(int), strict=True))
    rows = []
    for index in range(protocol.num_pairs):
        clip_id = str(chosen[rng.integers(len(chosen))])
        source, driving = rng.choice(lengths[clip_id], size=2, replace=False)
        rows.append((f"{index:05d}", clip_id, int(source), int(driving), "", ""))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


_FRAME_PATH = re.compile(r"(?P<video>[^/\\]+?)(?:\.mp4)?[/\\](?P<frame>\d+)\.png$")


def read_pairs_csv(path: Path | str, clips: pd.DataFrame) -> pd.DataFrame:
    """DaGAN's ``vox_evaluation.csv`` (``source,driving`` frame paths ending in
    ``<video>.mp4/<frame>.png``, frame numbers 0-based as video-preprocessing writes them)
    matched to our clips by video name (the last component of the clip id).

    Rows whose video is not among our clips, whose two frames come from different videos or
    whose frame lies past the clip's end are kept with status ``skipped`` and the reason.
    """
    by_name: dict[str, tuple[str, int]] = {}
    for clip_id, num_frames in zip(clips["clip_id"], clips["num_frames"].astype(int), strict=True):
        by_name[str(clip_id).rsplit("/", 1)[-1]] = (str(clip_id), num_frames)
    rows = []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or [h.strip() for h in header[:2]] != ["source", "driving"]:
            raise ValueError(f"{path}: expected a 'source,driving,...' header, got {header}")
        for index, record in enumerate(reader):
            if len(record) < 2:
                continue
            source, driving = _FRAME_PATH.search(record[0]), _FRAME_PATH.search(record[1])
            pair = f"{index:05d}"
            if source is None or driving is None:
                rows.append((pair, "", -1, -1, "skipped", f"unreadable frame paths {record[:2]}"))
                continue
            video = source["video"]
            source_frame, driving_frame = int(source["frame"]), int(driving["frame"])
            status, reason = "", ""
            if driving["video"] != video:
                status, reason = "skipped", f"frames of two videos ({video}, {driving['video']})"
            elif video not in by_name:
                status, reason = "skipped", f"video {video} is not among the evaluation clips"
            elif max(source_frame, driving_frame) >= by_name[video][1]:
                status, reason = "skipped", f"frame past the clip's {by_name[video][1]} frames"
            clip_id = by_name[video][0] if video in by_name else video
            rows.append((pair, clip_id, source_frame, driving_frame, status, reason))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def protocol_pairs(clips: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """The protocol's pair list: its CSV when given, else :func:`draw_pairs`."""
    if protocol.pairs_csv:
        pairs = read_pairs_csv(protocol.pairs_csv, clips)
        used = int((pairs["status"] == "").sum())
        log.info("%s: %d of %d pairs usable", protocol.pairs_csv, used, len(pairs))
        return pairs
    return draw_pairs(clips, protocol)


# -- running -------------------------------------------------------------------------------


def default_declaration() -> MethodDeclaration:
    """The motion-transfer family's declaration (a generator given without its method)."""
    family = FAMILIES.get("motion-transfer")
    return MethodDeclaration(family, family.inputs, family.options)


def clip_inputs(
    declaration: MethodDeclaration, video: Any, fps: float, audio: Path | None
) -> GenerationInputs:
    """A clip's own signals as the inputs ``declaration`` takes: its frames as the driving or
    face video, its frame 0 as the source, its speech as the audio."""
    from talking_heads.inference.run import load_inputs

    offered = {"driving": video, "face": video, "source": video[0]}
    inputs = GenerationInputs(fps=fps)
    for kind in declaration.input_kinds:
        if kind in offered:
            setattr(inputs, kind, offered[kind])
        elif kind == "audio" and audio is not None:
            inputs.audio = load_inputs({"audio": audio}).audio
        elif kind in declaration.required_kinds:
            raise InputError(f"the reconstruction protocol cannot supply input {kind!r}")
    return inputs


def _audio_of(row: Any) -> Path | None:
    audio = getattr(row, "audio_path", None)
    if isinstance(audio, str) and audio:
        return Path(row.shard_dir) / audio
    return None


def run_reconstruction(
    generator: Any,
    protocol: Protocol,
    shards: list[Path],
    out_dir: Path,
    *,
    declaration: MethodDeclaration | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> dict[str, Any]:
    """Re-generate every clip from its own signals with the generator's ``reconstruct_clip``
    (motion transfer: frame 0 and absolute motion; MRAA adds its background motion, as its
    ``reconstruction.py``).

    Writes ``generated/<clip>.mp4`` (lossless), ``summary.json`` and ``score_inputs.json``
    (the clips as references, their speech) into ``out_dir``.
    """
    from talking_heads.inference.run import resize_frames, to_frames, to_tensor
    from talking_heads.utils.media import read_video, write_video

    declaration = declaration or default_declaration()
    options = declaration.resolve_options(protocol.options, strict=False)
    clips = evaluation_clips(shards, protocol.split)
    if protocol.max_clips is not None:
        clips = clips.head(protocol.max_clips)
    records: list[dict[str, Any]] = []
    frames_done, seconds = 0, 0.0
    with atomic_path(out_dir) as tmp:
        (tmp / "generated").mkdir(parents=True)
        for row in _progress(clips.itertuples(), len(clips), protocol.name):
            try:
                frames, fps = read_video(Path(row.shard_dir) / row.path)
            except Exception as error:  # a damaged clip is recorded and skipped
                records.append({"clip_id": row.clip_id, "status": "skipped", "reason": str(error)})
                continue
            video = resize_frames(to_tensor(frames), generator.resolution)
            inputs = clip_inputs(declaration, video, fps, _audio_of(row))
            start = time.perf_counter()
            generated = generator.reconstruct_clip(
                inputs, options, batch_size=batch_size, device=device, amp=device.startswith("cuda")
            )
            seconds += time.perf_counter() - start
            frames_done += video.shape[0]
            name = clip_file_name(row.clip_id)
            write_video(tmp / "generated" / f"{name}.mp4", to_frames(generated), fps, crf=0)
            records.append(
                {"clip_id": row.clip_id, "file": f"{name}.mp4", "frames": int(video.shape[0])}
            )
        summary = _summary(protocol, records, frames_done, seconds, device)
        atomic_write_json(tmp / "summary.json", summary)
        score_inputs = {
            "reference": [str(Path(s) / "clips") for s in shards],
            "audio": [str(Path(s) / "audio") for s in shards if (Path(s) / "audio").is_dir()],
        }
        atomic_write_json(tmp / "score_inputs.json", score_inputs)
    return summary


def run_pairs(
    generator: Any,
    protocol: Protocol,
    shards: list[Path],
    out_dir: Path,
    *,
    declaration: MethodDeclaration | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> dict[str, Any]:
    """Generate each pair's driving frame from its source frame (inputs ``source`` and a
    one-frame ``driving`` video, with the protocol's options).

    Writes ``generated/<pair>.png``, ``reference/<pair>.png`` (the real driving frame),
    ``source/<pair>.png``, ``pairs.csv`` (every pair with its status), ``summary.json`` and
    ``score_inputs.json``. Each clip is decoded once for all its pairs.
    """
    from talking_heads.inference.run import resize_frames, to_frames, to_tensor
    from talking_heads.utils.media import read_video, write_image

    declaration = declaration or default_declaration()
    options = declaration.resolve_options(protocol.options, strict=False)
    clips = evaluation_clips(shards, protocol.split)
    pairs = protocol_pairs(clips, protocol)
    paths = {row.clip_id: Path(row.shard_dir) / row.path for row in clips.itertuples()}
    usable = pairs[pairs["status"] == ""]
    frames_done, seconds = 0, 0.0
    with atomic_path(out_dir) as tmp:
        for folder in ("generated", "reference", "source"):
            (tmp / folder).mkdir(parents=True)
        groups = usable.groupby("clip_id", sort=True)
        for clip_id, group in _progress(groups, groups.ngroups, protocol.name):
            try:
                frames, fps = read_video(paths[clip_id])
            except Exception as error:  # a damaged clip: its pairs are skipped
                pairs.loc[group.index, ["status", "reason"]] = ["skipped", str(error)]
                continue
            video = resize_frames(to_tensor(frames), generator.resolution)
            for row in group.itertuples():
                if max(row.source_frame, row.driving_frame) >= video.shape[0]:
                    pairs.loc[row.Index, ["status", "reason"]] = [
                        "skipped",
                        f"frame past the decoded clip's {video.shape[0]} frames",
                    ]
                    continue
                source = video[row.source_frame]
                driving = video[row.driving_frame : row.driving_frame + 1]
                inputs = GenerationInputs(source=source, driving=driving, fps=fps)
                start = time.perf_counter()
                generated = generator.synthesize(
                    inputs,
                    options,
                    batch_size=batch_size,
                    device=device,
                    amp=device.startswith("cuda"),
                )
                seconds += time.perf_counter() - start
                frames_done += 1
                images = to_frames(torch_cat(generated, driving, source[None]))
                for folder, image in zip(("generated", "reference", "source"), images, strict=True):
                    write_image(tmp / folder / f"{row.pair}.png", image)
                pairs.loc[row.Index, "status"] = "ok"
        atomic_write_text(tmp / "pairs.csv", pairs.to_csv(index=False))
        records = [
            {"pair": r.pair, "clip_id": r.clip_id, "status": r.status, "reason": r.reason}
            for r in pairs.itertuples()
            if r.status != "ok"
        ]
        summary = _summary(protocol, records, frames_done, seconds, device)
        summary["pairs"] = {"listed": len(pairs), "generated": frames_done}
        if frames_done == 0:
            raise RuntimeError(f"{protocol.name}: no pair could be generated ({records[:3]})")
        atomic_write_json(tmp / "summary.json", summary)
        out = Path(out_dir)
        score_inputs = {"reference": [str(out / "reference")], "source": str(out / "source")}
        atomic_write_json(tmp / "score_inputs.json", score_inputs)
    return summary


def torch_cat(*tensors: Any) -> Any:
    """``torch.cat`` of CPU float tensors (generated, reference, source frames)."""
    import torch

    return torch.cat([t.float().cpu() for t in tensors])


def run_lipsync_pairs(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Wav2Lip's lip-sync pairs (:mod:`talking_heads.inference.lipsync_pairs`)."""
    from talking_heads.inference.lipsync_pairs import run_lipsync_pairs as run

    return run(*args, **kwargs)


RUNNERS = {
    "reconstruction": run_reconstruction,
    "pairs": run_pairs,
    "lipsync_pairs": run_lipsync_pairs,
}


def run_protocol(
    method: str,
    checkpoint: Path,
    protocol: Protocol,
    shards: list[Path],
    out_dir: Path,
    *,
    batch_size: int = 16,
    device: str = "auto",
) -> dict[str, Any]:
    """Load ``method``'s generator from ``checkpoint`` and run ``protocol`` on ``shards``; the
    method's family must be one the protocol applies to."""
    from talking_heads.inference.run import pick_device
    from talking_heads.models import METHODS

    spec = METHODS.get(method)
    if not applies_to(protocol, spec.family):
        raise InputError(
            f"protocol {protocol.name} applies to {', '.join(protocol.families)} methods; "
            f"{method} is {spec.family}"
        )
    device = pick_device(device)
    generator = spec.load_generator(checkpoint, device=device)
    summary = RUNNERS[protocol.kind](
        generator,
        protocol,
        shards,
        out_dir,
        declaration=spec.declaration,
        batch_size=batch_size,
        device=device,
    )
    log.info(
        "%s with %s: %d frames at %.1f frames/s on %s",
        protocol.name,
        method,
        summary["frames"],
        summary["frames_per_second"],
        device,
    )
    return summary


def _summary(
    protocol: Protocol, records: list[dict[str, Any]], frames: int, seconds: float, device: str
) -> dict[str, Any]:
    return {
        "protocol": protocol.name,
        "label": protocol.label,
        "settings": asdict(protocol),
        "records": records,
        "frames": frames,
        "frames_per_second": frames / max(seconds, 1e-9),
        "device": device,
    }


def _progress(iterable: Any, total: int, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=name, unit="clip", leave=False)


def read_score_inputs(run_dir: Path | str) -> dict[str, Any]:
    """What a protocol run's frames are scored against (its ``score_inputs.json``): the
    ``generated`` folder, ``reference`` folders, ``audio`` folders and ``source`` portraits."""
    run_dir = Path(run_dir)
    path = run_dir / "score_inputs.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no score_inputs.json (not a protocol run's output)")
    import json

    inputs = json.loads(path.read_text("utf-8"))
    return {
        "generated": run_dir / "generated",
        "reference": [Path(p) for p in inputs.get("reference") or []] or None,
        "audio": [Path(p) for p in inputs.get("audio") or []] or None,
        "source": Path(inputs["source"]) if inputs.get("source") else None,
    }
