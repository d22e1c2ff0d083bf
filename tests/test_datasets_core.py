"""The acquisition core against a loopback server: resume, checksums, safe extraction, stages."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from dataset_media import make_tar, make_zip, split_parts, truncate
from fixture_server import FixtureServer
from talking_heads.cli import main as cli_main
from talking_heads.datasets import DATASETS, statistics_rows
from talking_heads.datasets.base import (
    AcquireContext,
    Dataset,
    coverage_summary,
    describe_media,
    run_all,
    stable_shard,
)
from talking_heads.datasets.transfer import (
    ChecksumError,
    ConcatReader,
    MissingCredentialsError,
    TransferError,
    credentials_from_env,
    download_file,
    part_path,
    redact_url,
    safe_extract,
)
from talking_heads.report.tables import build_table1

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SNAKEMAKE_DRY_RUN = (sys.executable, "-m", "snakemake", "-n", "--quiet", "rules")


def ffmpeg_copy_command(path: Path) -> list[str]:
    from talking_heads.utils.media import ffmpeg_exe

    return [ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-c", "copy"]


def _serve(server: FixtureServer, name: str, data: bytes = PAYLOAD) -> str:
    path = server.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"{server.url}/{name}"


# --- transfers -------------------------------------------------------------------------------


def test_interrupted_download_resumes_without_refetching_completed_bytes(
    fixture_server: FixtureServer, tmp_path: Path
) -> None:
    url = _serve(fixture_server, "big.bin")
    dest = tmp_path / "out" / "big.bin"
    fixture_server.cut_after("/big.bin", 300_000)
    with pytest.raises(TransferError, match="connection"):
        download_file(url, dest, retries=0, progress=False)  # a run killed by the cut
    kept = part_path(dest).stat().st_size
    assert 0 < kept <= 300_000 and not dest.exists()
    result = download_file(url, dest, md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    first, second = fixture_server.requests_for("/big.bin")
    assert first.range is None and first.bytes_sent == 300_000
    assert second.range == f"bytes={kept}-" and second.status == 206
    assert second.bytes_sent == len(PAYLOAD) - kept  # completed bytes never fetched again
    assert result.resumed_from == kept and result.bytes_fetched == len(PAYLOAD) - kept
    assert dest.read_bytes() == PAYLOAD and not part_path(dest).exists()


def test_a_cut_connection_is_retried_from_where_it_stopped(
    fixture_server: FixtureServer, tmp_path: Path
) -> None:
    url = _serve(fixture_server, "big.bin")
    fixture_server.cut_after("/big.bin", 200_000, times=2)
    dest = download_file(url, tmp_path / "big.bin", backoff_s=0.01, progress=False).path
    logged = fixture_server.requests_for("/big.bin")
    assert len(logged) == 3 and dest.read_bytes() == PAYLOAD
    assert sum(r.bytes_sent for r in logged) < len(PAYLOAD) + 2 * 65_536  # at most a chunk lost
    assert logged[1].range is not None and logged[2].range is not None


def test_server_errors_are_retried_and_dead_links_are_not(
    fixture_server: FixtureServer, tmp_path: Path
) -> None:
    url = _serve(fixture_server, "flaky.bin")
    fixture_server.fail_with("/flaky.bin", 503)
    assert download_file(url, tmp_path / "flaky.bin", backoff_s=0.01, progress=False).path.exists()
    assert [r.status for r in fixture_server.requests_for("/flaky.bin")] == [503, 200]
    with pytest.raises(TransferError) as error:
        download_file(f"{fixture_server.url}/gone.bin", tmp_path / "gone.bin", progress=False)
    assert error.value.reason == f"HTTP 404 not found (dead link): {fixture_server.url}/gone.bin"
    assert len(fixture_server.requests_for("/gone.bin")) == 1
    fixture_server.fail_with("/flaky2.bin", 403)
    with pytest.raises(TransferError, match="HTTP 403 forbidden"):
        download_file(f"{fixture_server.url}/flaky2.bin", tmp_path / "f2.bin", progress=False)


def test_checksum_mismatch_removes_the_bad_bytes(
    fixture_server: FixtureServer, tmp_path: Path
) -> None:
    url = _serve(fixture_server, "file.bin")
    dest = tmp_path / "file.bin"
    with pytest.raises(ChecksumError) as error:
        download_file(url, dest, sha256="ab" * 32, progress=False)
    actual = hashlib.sha256(PAYLOAD).hexdigest()
    assert error.value.reason == (
        f"checksum mismatch: sha256 of file.bin is {actual}, expected {'ab' * 32}"
    )
    assert not dest.exists() and not part_path(dest).exists()
    with pytest.raises(ChecksumError, match="size mismatch"):
        download_file(url, tmp_path / "sized.bin", expected_size=10, progress=False)


def test_credentials_come_from_the_environment_and_never_appear_in_messages() -> None:
    with pytest.raises(MissingCredentialsError) as error:
        credentials_from_env(["USER_X", "PASS_X"], purpose="x access", environ={"USER_X": "me"})
    assert error.value.reason == "missing credentials: set PASS_X (x access)"
    assert credentials_from_env(["A"], purpose="", environ={"A": "s3cret"}) == ("s3cret",)
    url = "https://me:s3cret@host/download?key=abc123&file=vox1_test_wav.zip"
    assert redact_url(url) == "https://host/download?key=***&file=vox1_test_wav.zip"


# --- archives --------------------------------------------------------------------------------


def test_multi_part_zip_reads_through_concat_reader(tmp_path: Path) -> None:
    members = {f"wav/id1000{i}/yt/0000{i}.wav": bytes([i]) * (50_000 + i) for i in range(1, 5)}
    whole = make_zip(tmp_path / "all.zip", members)
    parts = split_parts(whole, 3, "all_part")
    reader = ConcatReader(parts)
    assert reader.read() == whole.read_bytes()
    reader.seek(-10, io.SEEK_END)
    assert reader.read() == whole.read_bytes()[-10:]
    reader.seek(0)
    report = safe_extract(reader, tmp_path / "x", progress=False)
    assert len(report.extracted) == 4 and not report.rejected
    assert (tmp_path / "x/wav/id10003/yt/00003.wav").read_bytes() == bytes([3]) * 50_003
    again = safe_extract(ConcatReader(parts), tmp_path / "x", progress=False)
    assert len(again.existing) == 4 and not again.extracted  # resumed: nothing rewritten


def test_hostile_archive_members_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    evil_zip = make_zip(
        tmp_path / "evil.zip",
        {"ok/a.txt": b"a", "../escape.txt": b"x", "/abs.txt": b"y", "ok/../../up.txt": b"z"},
    )
    report = safe_extract(evil_zip, target, progress=False)
    assert [p.name for p in report.extracted] == ["a.txt"]
    assert dict(report.rejected) == {
        "../escape.txt": "path traversal ('..')",
        "/abs.txt": "absolute path",
        "ok/../../up.txt": "path traversal ('..')",
    }
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "up.txt").exists()
    evil_tar = make_tar(
        tmp_path / "evil.tar",
        {"ok/b.txt": b"b", "../../tar-escape.txt": b"x"},
        symlinks={"ok/link": "/etc/passwd", "ok/rel": "../../outside"},
    )
    report = safe_extract(evil_tar, target, progress=False)
    assert [p.name for p in report.extracted] == ["b.txt"]
    assert dict(report.rejected) == {
        "../../tar-escape.txt": "path traversal ('..')",
        "ok/link": "symbolic link",
        "ok/rel": "symbolic link",
    }
    assert not (target / "ok/link").exists() and not (target / "ok/link").is_symlink()
    with pytest.raises(TransferError, match="corrupt or truncated archive"):
        safe_extract(truncate(make_zip(tmp_path / "t.zip", {"a": b"a" * 5000})), tmp_path / "t")


def test_truncated_and_zero_byte_videos_are_reported(media_kit: Any, tmp_path: Path) -> None:
    good = media_kit.video(tmp_path / "good.mp4", seconds=1.0)
    facts = describe_media(good)
    assert facts["status"] == "ok" and facts["num_frames"] == 25 and facts["fps"] == 25.0
    assert facts["audio_rate"] == 16000 and facts["size_bytes"] == good.stat().st_size
    assert facts["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    head = tmp_path / "cut.mp4"
    head.write_bytes(good.read_bytes())
    truncate(head)  # the moov index at the end is lost
    assert describe_media(head)["reason"].startswith("unreadable media (corrupt or truncated)")
    faststart = tmp_path / "faststart.mp4"
    subprocess.run(
        [*ffmpeg_copy_command(good), "-movflags", "+faststart", str(faststart)],
        check=True,
    )
    tail_cut = truncate(faststart, 0.9)  # index intact, last frames' bytes missing
    assert describe_media(tail_cut)["reason"].startswith("truncated video")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert describe_media(empty)["reason"] == "zero-byte file: empty.mp4"


# --- the staged pipeline ---------------------------------------------------------------------


class ToyDataset(Dataset):
    """Three speakers' files over HTTP with credentials, one dead link, one bad checksum."""

    name = "toy"
    survey_name = "GRID"
    description = "toy"
    homepage = ""
    licence = ""
    subsets: ClassVar[dict[str, str]] = {"all": "everything"}
    default_subsets = ("all",)
    credentials: ClassVar[dict[str, tuple[str, ...]]] = {"official": ("TOY_USER", "TOY_PASS")}
    url_bases: ClassVar[dict[str, str]] = {"files": "https://example.org/toy"}
    files: ClassVar[dict[str, str]] = {}

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        base = self.base_url(ctx, "files")
        return [
            {
                "unit_id": name,
                "group": name.split("_")[0],
                "kind": "video",
                "url": f"{base}/{name}.mp4",
                "dest": f"video/{name}.mp4",
                "sha256": sha256,
                "subset": "all",
            }
            for name, sha256 in self.files.items()
        ]

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        from talking_heads.datasets.base import describe_clips

        mine = units[(units["shard"] == shard) & (units["download_status"] == "ok")]
        items = [
            {
                "clip_id": u["unit_id"],
                "unit_id": u["unit_id"],
                "speaker": u["group"],
                "split": "test",
                "path": ctx.rel(ctx.raw_root / u["dest"]),
                "_abs_path": ctx.raw_root / u["dest"],
            }
            for u in mine.to_dict("records")
        ]
        return describe_clips(items, ctx)


def _toy(server: FixtureServer, media_kit: Any, tmp_path: Path) -> tuple[ToyDataset, dict]:
    files = {}
    for name in ("s1_a", "s1_b", "s2_a", "s3_a"):
        clip = media_kit.video(server.root / "toy" / f"{name}.mp4", seconds=0.6)
        files[name] = hashlib.sha256(clip.read_bytes()).hexdigest()
    files["s3_a"] = "0" * 64  # published checksum differs from the served file
    files["s2_dead"] = ""
    server.require_auth("/toy", "alice", "pw-123")
    ToyDataset.files = files
    return ToyDataset(), files


def test_staged_pipeline_records_every_outcome(
    fixture_server: FixtureServer, media_kit: Any, tmp_path: Path
) -> None:
    dataset, _ = _toy(fixture_server, media_kit, tmp_path)
    ctx = AcquireContext(
        "toy",
        tmp_path / "raw" / "toy",
        tmp_path / "data" / "toy",
        num_shards=2,
        mirrors={"files": f"{fixture_server.url}/toy"},
        progress=False,
        backoff_s=0.01,
        environ={"TOY_USER": "alice", "TOY_PASS": "pw-123"},
    )
    manifest = pd.read_parquet(run_all(dataset, ctx)).set_index("clip_id")
    assert sorted(manifest.index) == ["s1_a", "s1_b", "s2_a", "s2_dead", "s3_a"]
    assert manifest.loc["s1_a", "status"] == "ok" and manifest.loc["s1_a", "num_frames"] == 15
    assert (ctx.data_root / manifest.loc["s2_a", "path"]).resolve() == (
        ctx.raw_root / "video/s2_a.mp4"
    ).resolve()
    assert manifest.loc["s2_dead", "reason"].startswith("HTTP 404 not found (dead link)")
    assert manifest.loc["s3_a", "reason"].startswith("checksum mismatch: sha256 of s3_a.mp4")
    assert not (ctx.raw_root / "video/s3_a.mp4").exists()
    for shard in (0, 1):
        part = pd.read_parquet(ctx.manifest_shard(shard))
        assert {stable_shard(s, 2) for s in part["clip_id"].str.split("_").str[0]} <= {shard}
    coverage = json.loads((ctx.data_root / "coverage.json").read_text())
    assert coverage["ok"] == 3 and coverage["by_reason"] == {
        "HTTP 404 not found (dead link)": 1,
        "checksum mismatch": 1,
    }
    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    assert stats["speakers"] == 2 and stats["utterances"] == 3
    assert stats["hours"] == pytest.approx(3 * 0.6 / 3600, rel=0.05)
    # verify: every ok clip matches its recorded size and sha256, until a file is damaged
    from talking_heads.datasets.verify import verify_dataset

    assert verify_dataset(ctx)["problems"] == []
    damaged = ctx.raw_root / "video/s1_b.mp4"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    problems = verify_dataset(ctx)["problems"]
    assert problems == [
        f"clip {ctx.data_root / manifest.loc['s1_b', 'path']}: sha256 differs from the manifest",
        f"download {damaged}: sha256 differs from the published value",
    ]
    assert json.loads((ctx.data_root / "verify.json").read_text())["problems"] == problems
    damaged.unlink()
    # a second run fetches nothing again but the deleted file
    before = len(fixture_server.requests)
    run_all(dataset, ctx)
    fetched = [r.path for r in fixture_server.requests[before:] if r.status in (200, 206)]
    assert sorted(fetched) == ["/toy/s1_b.mp4", "/toy/s3_a.mp4"]  # s3_a: its checksum failed


def test_missing_credentials_fail_every_unit_and_the_run_goes_on(
    fixture_server: FixtureServer, media_kit: Any, tmp_path: Path
) -> None:
    dataset, files = _toy(fixture_server, media_kit, tmp_path)
    ctx = AcquireContext(
        "toy",
        tmp_path / "raw" / "toy",
        tmp_path / "data" / "toy",
        mirrors={"files": f"{fixture_server.url}/toy"},
        progress=False,
        environ={"TOY_USER": "alice"},
    )
    manifest = pd.read_parquet(run_all(dataset, ctx))
    assert len(manifest) == len(files) and set(manifest["status"]) == {"failed"}
    assert set(manifest["reason"]) == {"missing credentials: set TOY_PASS (toy official access)"}
    assert fixture_server.requests == []
    assert coverage_summary(manifest)["by_reason"] == {"missing credentials": len(files)}


# --- registry, Table 1, CLI --------------------------------------------------------------------


SIX = ["cremad", "hdtf", "lrw", "mead", "voxceleb1", "voxceleb2"]


def test_registry_names_the_six_survey_datasets(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["datasets", "list"]) == 0
    listed = {
        line.split("\t")[0]: line.split("\t") for line in capsys.readouterr().out.splitlines()
    }
    assert set(SIX) <= set(listed) and "demo" in listed
    survey = {n: DATASETS.get(n).survey_name for n in SIX}
    assert survey == {
        "cremad": "CREMA-D",
        "hdtf": "HDTF",
        "lrw": "LRW",
        "mead": "MEAD",
        "voxceleb1": "VoxCeleb1",
        "voxceleb2": "VoxCeleb2",
    }
    assert listed["voxceleb1"][1] == "VoxCeleb1"


def test_stats_writes_table1_with_all_eleven_rows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "hdtf").mkdir(parents=True)
    (data / "hdtf" / "statistics.json").write_text(
        json.dumps(
            {
                "dataset": "hdtf",
                "survey_name": "HDTF",
                "clips_ok": 3,
                "clips_total": 4,
                "hours": 0.0125,
                "speakers": 2,
                "utterances": 3,
                "head_movement": "Yes",
                "source": "Wild",
            }
        )
    )
    out = tmp_path / "tables"
    assert cli_main(["datasets", "stats", "--data-root", str(data), "--out", str(out)]) == 0
    with open(out / "table1.csv", newline="", encoding="utf-8") as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    assert len(rows) == 11
    assert rows["HDTF"]["hours"] == "15.8" and rows["HDTF"]["ours_hours"] == "0.01"
    assert rows["HDTF"]["ours_status"] == "downloaded: 3/4 clips ok (75.0 %)"
    assert rows["HDTF"]["ours_speakers"] == "2" and "videos, not speakers" in rows["HDTF"]["note"]
    assert rows["VoxCeleb1"]["ours_status"] == "not downloaded"
    assert rows["GRID"]["ours_status"] == "not in the workflow"
    md = (out / "table1.md").read_text(encoding="utf-8")
    assert "| HDTF [" in md and "Known problems with the printed values" in md
    assert "| VoxCeleb1 [" in md and "| 2017 | 352 | 1.2k | 153.5K |" in md
    assert len(statistics_rows(data)) == 6
    with pytest.raises(ValueError, match="Table 1 lacks"):
        build_table1([{"survey_name": "Nope"}], out)


def test_survey_preset_plans_sharded_downloads_for_all_six(tmp_path: Path) -> None:
    from conftest import copy_project

    root = copy_project(tmp_path / "project")
    result = subprocess.run(
        [*SNAKEMAKE_DRY_RUN, "--configfile", "configs/workflow/survey.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    counts = {
        line.split()[0]: int(line.split()[-1])
        for line in result.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[-1].isdigit()
    }
    import yaml

    config = yaml.safe_load((root / "configs/workflow/survey.yaml").read_text())
    assert set(config["datasets"]) == set(SIX)
    shards = sum(spec["download_shards"] for spec in config["datasets"].values())
    assert counts["dataset_index"] == 6 and counts["dataset_merge"] == 6
    assert counts["dataset_download"] == shards and counts["dataset_scan"] == shards
    assert "prepare_dataset" not in counts  # the demo is not merged into the survey config
    assert counts["table1"] == 1


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["datasets", "download", "nope", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    code = cli_main(
        ["datasets", "stage", "scan", "hdtf", "--root", str(tmp_path), "--data-root", str(tmp_path)]
    )
    assert code == 2 and "stage scan needs --shard" in capsys.readouterr().err
    assert cli_main(["datasets", "verify", "lrw", "--data-root", str(tmp_path)]) == 2
    assert "no manifest; download lrw first" in capsys.readouterr().err
