"""MEAD acquisition against a local copy of the Drive layout (per-actor video/audio tars)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dataset_media import make_tar, sha256_of, truncate
from talking_heads.datasets.base import AcquireContext, run_all
from talking_heads.datasets.mead import MEAD, PUBLIC_ACTORS, official_split, parse_clip_path
from talking_heads.manifest import read_manifest


@pytest.fixture(scope="module")
def clips(media_kit, tmp_path_factory) -> dict[str, bytes]:
    """One small MEAD-like video (64x36 at 30 fps, with speech) and one .m4a."""
    work = tmp_path_factory.mktemp("mead-media")
    video = media_kit.video(work / "clip.mp4", seconds=0.5, fps=30, size=(64, 36))
    audio = media_kit.audio(work / "clip.m4a", seconds=0.5, rate=16000)
    silent = media_kit.video(work / "silent.mp4", seconds=0.5, fps=30, size=(64, 36), audio=False)
    return {"mp4": video.read_bytes(), "m4a": audio.read_bytes(), "silent": silent.read_bytes()}


def _context(tmp_path: Path, server, **options) -> AcquireContext:
    return AcquireContext(
        name="mead",
        raw_root=tmp_path / "raw" / "mead",
        data_root=tmp_path / "data" / "mead",
        source="official",
        mirrors={"official": server.url + "/mead"},
        jobs=2,
        progress=False,
        retries=1,
        backoff_s=0.01,
        **options,
    )


def _serve_actors(www: Path, clips: dict[str, bytes]) -> None:
    """M003 (front + left_30 views, three emotions) and W017 (down view only)."""
    mp4, m4a = clips["mp4"], clips["m4a"]
    make_tar(
        www / "mead" / "M003" / "video.tar",
        {
            "video/front/angry/level_1/001.mp4": mp4,
            "video/front/angry/level_1/030.mp4": mp4,
            "video/front/neutral/level_1/035.mp4": mp4,
            "video/left_30/angry/level_1/001.mp4": mp4,
        },
    )
    make_tar(
        www / "mead" / "M003" / "audio.tar",
        {
            "audio/angry/level_1/001.m4a": m4a,
            "audio/angry/level_1/030.m4a": m4a,
            "audio/neutral/level_1/035.m4a": m4a,
        },
    )
    make_tar(www / "mead" / "W017" / "video.tar", {"video/down/happy/level_2/001.mp4": mp4})
    make_tar(www / "mead" / "W017" / "audio.tar", {"audio/happy/level_2/001.m4a": m4a})


def test_official_split_last_sentences_are_test() -> None:
    assert official_split("neutral", 30) == "train"
    assert [official_split("neutral", s) for s in (31, 40)] == ["test", "test"]
    assert official_split("angry", 24) == "train"
    assert [official_split(e, 25) for e in ("angry", "sad", "surprised")] == ["test"] * 3
    assert official_split("contempt", 30) == "test"
    assert official_split("happy", 1) == "train"
    # over the nominal corpus: 10 of 40 neutral, 6 of 30 per other emotion and level
    assert sum(official_split("neutral", s) == "test" for s in range(1, 41)) == 10
    assert sum(official_split("fear", s) == "test" for s in range(1, 31)) == 6
    with pytest.raises(ValueError):
        official_split("bored", 3)


def test_parse_clip_path_and_actor_list() -> None:
    assert parse_clip_path(Path("M003/video/left_60/sad/level_3/017.mp4")) == {
        "kind": "video",
        "view": "left_60",
        "emotion": "sad",
        "level": 3,
        "sentence": 17,
    }
    assert parse_clip_path(Path("audio/fear/level_2/004.m4a"))["kind"] == "audio"
    assert parse_clip_path(Path("video/sideways/sad/level_3/017.mp4")) is None
    assert parse_clip_path(Path("video/front/sad/level_9/017.mp4")) is None
    assert len(PUBLIC_ACTORS) == len(set(PUBLIC_ACTORS)) == 48
    assert "W017" in PUBLIC_ACTORS and "M003" in PUBLIC_ACTORS


def test_front_and_audio_rows_with_split_pairing_and_w017(tmp_path, fixture_server, clips):
    _serve_actors(fixture_server.root, clips)
    ctx = _context(tmp_path, fixture_server, num_shards=2)
    manifest = read_manifest(run_all(MEAD(actors=["M003", "W017"]), ctx))
    rows = manifest.set_index("clip_id")

    front = rows.loc["M003/video/front/angry/level_1/001"]
    assert front["status"] == "ok", front["reason"]
    assert (front["view"], front["emotion"], front["level"], front["sentence"]) == (
        "front",
        "angry",
        1,
        1,
    )
    assert front["split"] == "train" and front["speaker"] == "M003"
    assert (front["width"], front["height"]) == (64, 36)
    assert front["audio_path"] == "../../raw/mead/M003/audio/angry/level_1/001.m4a"
    assert (ctx.data_root / front["audio_path"]).is_file()
    assert rows.loc["M003/video/front/angry/level_1/030", "split"] == "test"
    assert rows.loc["M003/video/front/neutral/level_1/035", "split"] == "test"

    # only the front view was extracted
    assert not (ctx.raw_root / "M003" / "video" / "left_30").exists()
    assert not any(rows.index.str.contains("left_30"))

    audio = rows.loc["M003/audio/angry/level_1/030"]
    assert audio["status"] == "ok" and audio["kind"] == "audio" and audio["split"] == "test"
    assert audio["audio_rate"] == 16000 and pd.isna(audio["view"])

    # W017 has only the down view: its video archive yields one skipped, explained row
    w017 = rows.loc["W017/video"]
    assert w017["status"] == "skipped"
    assert "only the 'down' view" in w017["reason"] and "Mead#9" in w017["known_issue"]
    assert rows.loc["W017/audio/happy/level_2/001", "status"] == "ok"

    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    assert stats["utterances"] == 3 and stats["speakers"] == 1 and stats["views"] == ["front"]

    # a second run fetches nothing again (archives verified on disk, extraction recorded)
    before = len(fixture_server.requests)
    run_all(MEAD(actors=["M003", "W017"]), ctx)
    assert len(fixture_server.requests) == before


def test_video_subset_keeps_all_views(tmp_path, fixture_server, clips):
    _serve_actors(fixture_server.root, clips)
    ctx = _context(tmp_path, fixture_server, subsets=("video",))
    manifest = read_manifest(run_all(MEAD(actors=["W017"]), ctx))
    assert manifest["clip_id"].tolist() == ["W017/video/down/happy/level_2/001"]
    row = manifest.iloc[0]
    assert row["status"] == "ok" and row["view"] == "down"
    assert "W017 released only the 'down' view" in row["known_issue"]
    assert pd.isna(row["audio_path"])  # the audio subset was not selected
    assert fixture_server.requests_for("/mead/W017/audio.tar") == []


def test_hostile_members_refused_and_recorded(tmp_path, fixture_server, clips):
    www = fixture_server.root
    make_tar(
        www / "mead" / "M005" / "video.tar",
        {
            "video/front/happy/level_1/001.mp4": clips["mp4"],
            "../evil.mp4": b"escaped",
            "video/../../evil2.txt": b"escaped too",
        },
        symlinks={"video/front/happy/level_1/002.mp4": "/etc/passwd"},
    )
    ctx = _context(tmp_path, fixture_server, subsets=("front",))
    manifest = read_manifest(run_all(MEAD(actors=["M005"]), ctx))
    rows = manifest.set_index("clip_id")
    assert rows.loc["M005/video/front/happy/level_1/001", "status"] == "ok"

    refused = manifest[manifest["reason"].str.startswith("refused archive member")]
    assert len(refused) == 3 and set(refused["status"]) == {"skipped"}
    reasons = " | ".join(refused["reason"])
    assert "../evil.mp4 (path traversal ('..'))" in reasons
    assert "video/../../evil2.txt" in reasons
    assert "video/front/happy/level_1/002.mp4 (symbolic link)" in reasons
    # nothing escaped the actor folder and no link was written
    assert not (ctx.raw_root / "evil.mp4").exists()
    assert not (tmp_path / "raw" / "evil2.txt").exists()
    assert not (ctx.raw_root / "M005" / "video/front/happy/level_1/002.mp4").exists()


def test_truncated_actor_tar_is_a_failed_row(tmp_path, fixture_server, clips):
    www = fixture_server.root
    tar = make_tar(
        www / "mead" / "M019" / "video.tar",
        {f"video/front/sad/level_3/{n:03d}.mp4": clips["mp4"] for n in (1, 2, 3)},
    )
    truncate(tar, 0.5)
    ctx = _context(tmp_path, fixture_server, subsets=("front",))
    manifest = read_manifest(run_all(MEAD(actors=["M019"]), ctx))
    assert manifest["clip_id"].tolist() == ["M019/video"]
    row = manifest.iloc[0]
    assert row["status"] == "failed"
    assert row["reason"].startswith("corrupt or truncated archive")
    assert "known defect: M019/video.tar on Google Drive is corrupted" in row["reason"]


def test_hf_mirror_listing_gives_checksums_and_missing_archives(tmp_path, fixture_server, clips):
    www = fixture_server.root
    tar = make_tar(
        www / "hf" / "M003_video.tar", {"video/front/fear/level_2/026.mp4": clips["mp4"]}
    )
    listing = [
        {
            "type": "file",
            "path": "M003_video.tar",
            "size": 135,
            "lfs": {"oid": sha256_of(tar), "size": tar.stat().st_size, "pointerSize": 135},
        },
        {"type": "file", "path": ".gitattributes", "size": 2460},
    ]
    (www / "api").mkdir()
    (www / "api" / "tree").write_text(json.dumps(listing))
    ctx = AcquireContext(
        name="mead",
        raw_root=tmp_path / "raw" / "mead",
        data_root=tmp_path / "data" / "mead",
        mirrors={"hf": fixture_server.url + "/hf", "hf_api": fixture_server.url + "/api/tree"},
        progress=False,
        backoff_s=0.01,
    )
    manifest = read_manifest(run_all(MEAD(actors=["M003"]), ctx)).set_index("clip_id")
    clip = manifest.loc["M003/video/front/fear/level_2/026"]
    assert clip["status"] == "ok" and clip["split"] == "test"
    assert manifest.loc["M003/audio", "status"] == "failed"
    assert manifest.loc["M003/audio", "reason"].startswith("not on the mirror: M003_audio.tar")
    assert fixture_server.requests_for("/hf/M003_audio.tar") == []
    index = pd.read_parquet(ctx.index_path).set_index("unit_id")
    assert index.loc["M003/video", "sha256"] == sha256_of(tar)
    assert index.loc["M003/video", "url"].endswith("/hf/M003_video.tar")


def test_official_source_without_mirror_explains(tmp_path):
    ctx = AcquireContext(
        name="mead",
        raw_root=tmp_path / "raw" / "mead",
        data_root=tmp_path / "data" / "mead",
        source="official",
        progress=False,
    )
    manifest = read_manifest(run_all(MEAD(actors=["M003"]), ctx))
    assert manifest["status"].tolist() == ["failed"]
    assert "--mirror official=URL" in manifest.iloc[0]["reason"]


def test_m041_silent_front_videos_are_paired_with_the_audio_tree(tmp_path, fixture_server, clips):
    www = fixture_server.root
    make_tar(
        www / "mead" / "M041" / "video.tar", {"video/front/sad/level_2/021.mp4": clips["silent"]}
    )
    make_tar(www / "mead" / "M041" / "audio.tar", {"audio/sad/level_2/021.m4a": clips["m4a"]})
    ctx = _context(tmp_path, fixture_server)
    rows = read_manifest(run_all(MEAD(actors=["M041"]), ctx)).set_index("clip_id")
    video = rows.loc["M041/video/front/sad/level_2/021"]
    assert video["status"] == "ok" and pd.isna(video["audio_rate"])
    assert "no audio track" in video["known_issue"]
    assert video["audio_path"].endswith("M041/audio/sad/level_2/021.m4a")
    assert rows.loc["M041/audio/sad/level_2/021", "known_issue"] == ""
