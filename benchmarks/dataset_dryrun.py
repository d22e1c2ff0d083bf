"""Planning cost at VoxCeleb2 scale: ``snakemake -n`` over a synthetic 1.1M-row manifest.

Builds, in a scratch copy of the workflow, a VoxCeleb2-sized dataset record (1,128,246 clips
of 6,112 speakers, dealt to 256 download/scan shards by speaker hash, exactly as the
acquisition pipeline writes them: index, download records, shard manifests, the merged
manifest, coverage and statistics), then times a dry run of the whole workflow on it with FOMM
training and evaluation on that dataset (256 preprocessing shards). It also times a dry run
from nothing (every acquisition job planned) and what one preprocessing job pays to read the
merged manifest and select its shard. The goal is a dry run under 60 s: the DAG depends on
shard counts from the config, never on the number of clips.

    python benchmarks/dataset_dryrun.py [--clips 1128246] [--shards 256]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT = Path(__file__).resolve().parents[1]
SPEAKERS = 6_112
BUDGET_S = 60.0


def project_copy(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        if rel.startswith(("data/", "results/")) or not (PROJECT / rel).is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / rel, target)


def config(shards: int) -> dict:
    base = yaml.safe_load((PROJECT / "configs/workflow/survey.yaml").read_text())
    base["datasets"] = {
        "voxceleb2": {"download_shards": shards, "num_shards": shards, "source": "hf"}
    }
    base["methods"]["fomm"]["dataset"] = "voxceleb2"
    base["evaluation"]["dataset"] = "voxceleb2"
    base["report"]["data_label"] = "voxceleb2"
    base["dvc"]["track"] = False
    return base


def synthetic_manifest(clips: int, shards: int, rng: np.random.Generator) -> pd.DataFrame:
    from talking_heads.datasets.base import stable_shard

    speaker_ids = np.array([f"id{i:05d}" for i in range(SPEAKERS)])
    speaker = np.sort(rng.integers(0, SPEAKERS, clips))
    video = rng.integers(0, 40, clips)
    clip_no = np.arange(clips) % 100 + 1
    speakers = speaker_ids[speaker]
    clip_id = pd.Series(speakers).str.cat(
        [pd.Series(video).map("yt{:09d}".format), pd.Series(clip_no).map("{:05d}".format)],
        sep="/",
    )
    shard_of = {s: stable_shard(s, shards) for s in speaker_ids}
    return pd.DataFrame(
        {
            "clip_id": clip_id,
            "speaker": speakers,
            "split": np.where(speaker < 118, "test", "train"),
            "kind": "video",
            "source": "hf",
            "path": "../raw/voxceleb2/dev/mp4/" + clip_id + ".mp4",
            "num_frames": rng.integers(100, 500, clips),
            "fps": 25.0,
            "width": 224,
            "height": 224,
            "duration_s": rng.uniform(4, 20, clips),
            "audio_rate": 16000,
            "size_bytes": rng.integers(100_000, 900_000, clips),
            "sha256": "0" * 64,
            "status": "ok",
            "reason": "",
            "shard": [shard_of[s] for s in speakers],
        }
    )


def write_records(root: Path, frame: pd.DataFrame, shards: int) -> None:
    """Every acquisition output, oldest first (so a dry run sees them up to date)."""
    from talking_heads.datasets.base import coverage_summary
    from talking_heads.manifest import write_manifest
    from talking_heads.utils.atomic import atomic_write_json

    raw = root / "data/raw/voxceleb2"
    data = root / "data/voxceleb2"
    units = pd.DataFrame({"unit_id": [f"part{i}" for i in range(shards)], "shard": range(shards)})
    raw.mkdir(parents=True)
    units.to_parquet(raw / "index.parquet")
    atomic_write_json(raw / "index.json", {"num_shards": shards, "source": "hf", "subsets": []})
    for shard in range(shards):
        name = f"shard-{shard:03d}.parquet"
        (raw / "downloads").mkdir(exist_ok=True)
        units.iloc[[shard]].to_parquet(raw / "downloads" / name)
    for shard, part in frame.groupby("shard"):
        write_manifest(part.drop(columns="shard"), data / "manifest" / f"shard-{shard:03d}.parquet")
    time.sleep(0.01)
    write_manifest(frame.drop(columns="shard"), data / "manifest.parquet")
    atomic_write_json(data / "coverage.json", coverage_summary(frame))
    atomic_write_json(data / "statistics.json", {"hours": float(frame["duration_s"].sum() / 3600)})


def dry_run(root: Path) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile", "bench.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    totals = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("total")]
    return elapsed, int(totals[-1]) if totals else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1_128_246)
    parser.add_argument("--shards", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="th-dryrun-") as tmp:
        root = Path(tmp)
        project_copy(root)
        (root / "bench.yaml").write_text(yaml.safe_dump(config(args.shards)))
        empty_s, empty_jobs = dry_run(root)
        started = time.perf_counter()
        frame = synthetic_manifest(args.clips, args.shards, rng)
        write_records(root, frame, args.shards)
        build_s = time.perf_counter() - started
        full_s, full_jobs = dry_run(root)
        from talking_heads.manifest import read_manifest
        from talking_heads.preprocess.recipes import select_shard

        started = time.perf_counter()
        shard_rows = select_shard(
            read_manifest(root / "data/voxceleb2/manifest.parquet"), 0, args.shards
        )
        read_s = time.perf_counter() - started
    print(
        f"synthetic VoxCeleb2 manifest: {len(frame):,} clips, {frame['speaker'].nunique():,} "
        f"speakers, {args.shards} shards (built in {build_s:.1f} s)"
    )
    print(f"dry run, nothing downloaded : {empty_s:6.2f} s, {empty_jobs} jobs planned")
    print(f"dry run, 1.1M-row manifest  : {full_s:6.2f} s, {full_jobs} jobs planned")
    print(
        f"one preprocessing job reads the manifest and selects its shard "
        f"({len(shard_rows):,} rows) in {read_s:.2f} s"
    )
    print(
        f"ratio dry run / {BUDGET_S:.0f} s budget: {full_s / BUDGET_S:.3f} "
        f"({'within' if full_s < BUDGET_S else 'OVER'} budget)"
    )


if __name__ == "__main__":
    main()
