"""LRW acquisition: seven byte-split parts of a real tar behind basic auth, joined in place."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from dataset_media import make_tar, split_parts
from talking_heads.datasets.base import AcquireContext, run_all, stable_shard
from talking_heads.datasets.lrw import LRW, PARTS, parse_annotation, split_of
from talking_heads.manifest import read_manifest

USER, PASSWORD = "lrw-reader", "pw-9f3b1c-never-shown"


def _txt(word: str, duration: float) -> bytes:
    return (
        f"Text:  {word}\nConf:  6\nRef:   6330311066473698535\nId:    1\n"
        f"Duration: {duration:.2f} seconds\n"
    ).encode()


@pytest.fixture(scope="module")
def lrw_tar(media_kit, tmp_path_factory) -> Path:
    """lipread_mp4 with three words over the three splits, one clip badly annotated."""
    work = tmp_path_factory.mktemp("lrw-media")
    clip = media_kit.video(work / "clip.mp4", seconds=1.16, fps=25, size=(64, 64)).read_bytes()
    members: dict[str, bytes] = {}
    for word, split, number, duration in [
        ("ABOUT", "train", 1, 0.35),
        ("ABOUT", "val", 7, 0.31),
        ("ABOUT", "test", 12, 0.29),
        ("ABSOLUTELY", "train", 3, 0.62),
        ("ACCESS", "test", 2, None),
    ]:
        stem = f"lipread_mp4/{word}/{split}/{word}_{number:05d}"
        members[f"{stem}.mp4"] = clip
        members[f"{stem}.txt"] = _txt(word, duration) if duration else b"Text:  ACCESS\n"
    return make_tar(work / "lrw-v1.tar", members)


def _serve(server, tar: Path) -> None:
    data1 = server.root / "lip_reading" / "data1"
    data1.mkdir(parents=True)
    copy = data1 / "lrw-v1.tar"
    copy.write_bytes(tar.read_bytes())
    assert [p.name for p in split_parts(copy, len(PARTS), "lrw-v1-part")] == list(PARTS)
    copy.unlink()
    server.require_auth("/lip_reading/", USER, PASSWORD)


def _context(tmp_path: Path, server, environ: dict[str, str], **options) -> AcquireContext:
    return AcquireContext(
        name="lrw",
        raw_root=tmp_path / "raw" / "lrw",
        data_root=tmp_path / "data" / "lrw",
        mirrors={"official": server.url + "/lip_reading/data1"},
        environ=environ,
        jobs=3,
        progress=False,
        retries=1,
        backoff_s=0.01,
        **options,
    )


def _all_text(root: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


def test_parse_annotation_and_split_of() -> None:
    assert parse_annotation(_txt("ABOUT", 0.35).decode()) == {
        "word": "ABOUT",
        "word_duration_s": 0.35,
    }
    with pytest.raises(ValueError, match="5th line"):
        parse_annotation("Text: A\nB\nC\nD\nDuration 0.3\n")
    with pytest.raises(ValueError, match="1 lines"):
        parse_annotation("Text:  ACCESS\n")
    assert split_of("lipread_mp4/ABOUT/val/ABOUT_00007.mp4") == "val"
    assert split_of("lipread_mp4/ABOUT") is None


def test_parts_under_basic_auth_joined_and_parsed(tmp_path, fixture_server, lrw_tar, caplog):
    _serve(fixture_server, lrw_tar)
    ctx = _context(tmp_path, fixture_server, {"LRW_USER": USER, "LRW_PASSWORD": PASSWORD})
    ctx.num_shards = 2
    with caplog.at_level(logging.DEBUG):
        manifest = read_manifest(run_all(LRW(), ctx))
    rows = manifest.set_index("clip_id")

    about = rows.loc["ABOUT/train/ABOUT_00001"]
    assert about["status"] == "ok", about["reason"]
    assert (about["word"], about["split"], about["word_duration_s"]) == ("ABOUT", "train", 0.35)
    assert pd.isna(about["speaker"])
    assert (about["width"], about["height"], about["num_frames"]) == (64, 64, 29)
    assert rows.loc["ABOUT/val/ABOUT_00007", "split"] == "val"
    assert rows.loc["ABOUT/test/ABOUT_00012", "word_duration_s"] == pytest.approx(0.29)
    assert rows.loc["ABSOLUTELY/train/ABSOLUTELY_00003", "word_duration_s"] == 0.62

    bad = rows.loc["ACCESS/test/ACCESS_00002"]
    assert bad["status"] == "failed"
    assert bad["reason"].startswith("annotation malformed: ACCESS_00002.txt")

    # every part was fetched once, with credentials; the join left no whole copy
    for part in PARTS:
        got = fixture_server.requests_for(f"/lip_reading/data1/{part}")
        assert [r.status for r in got] == [200]
    assert not list(ctx.raw_root.rglob("*.tar"))
    assembled = json.loads(ctx.assembled_path.read_text())
    assert assembled["status"] == "ok" and assembled["archive_md5"]
    assert "no checksums are published" in assembled["checksum"]
    assert set(manifest.loc[manifest["status"] == "ok", "archive_md5"]) == {
        assembled["archive_md5"]
    }

    # clips are sharded by word
    for shard in range(2):
        part = read_manifest(ctx.manifest_shard(shard))
        assert all(stable_shard(w, 2) == shard for w in part["word"].dropna())

    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    assert stats["speakers"] is None and "1k+" in stats["speakers_note"]
    assert stats["utterances"] == 4 and stats["words"] == 2

    # the password is in no file we wrote and in no log line
    assert PASSWORD not in _all_text(tmp_path / "raw") + _all_text(tmp_path / "data")
    assert PASSWORD not in caplog.text

    # a second run re-downloads and re-extracts nothing
    before = len(fixture_server.requests)
    run_all(LRW(), ctx)
    assert len(fixture_server.requests) == before
    assert json.loads(ctx.assembled_path.read_text())["resumed"] is True


def test_missing_credentials_fail_every_part_and_run_goes_on(tmp_path, fixture_server, lrw_tar):
    _serve(fixture_server, lrw_tar)
    ctx = _context(tmp_path, fixture_server, {})
    manifest = read_manifest(run_all(LRW(), ctx))
    assert sorted(manifest["clip_id"]) == list(PARTS)
    assert set(manifest["status"]) == {"failed"}
    assert all("set LRW_USER and LRW_PASSWORD" in r for r in manifest["reason"])
    assert fixture_server.requests == []
    assembled = json.loads(ctx.assembled_path.read_text())
    assert assembled["status"] == "failed" and "lrw-v1-partaa" in assembled["reason"]


def test_wrong_password_is_401_without_the_password(tmp_path, fixture_server, lrw_tar):
    _serve(fixture_server, lrw_tar)
    wrong = "wrong-pw-5e1d"
    ctx = _context(tmp_path, fixture_server, {"LRW_USER": USER, "LRW_PASSWORD": wrong})
    manifest = read_manifest(run_all(LRW(), ctx))
    assert set(manifest["status"]) == {"failed"}
    assert manifest["reason"].str.startswith("HTTP 401 unauthorised").all()
    assert wrong not in _all_text(tmp_path)


def test_test_subset_extracts_only_the_test_split(tmp_path, fixture_server, lrw_tar):
    _serve(fixture_server, lrw_tar)
    environ = {"LRW_USER": USER, "LRW_PASSWORD": PASSWORD}
    ctx = _context(tmp_path, fixture_server, environ, subsets=("test",))
    manifest = read_manifest(run_all(LRW(), ctx))
    assert set(manifest["split"]) == {"test"}
    assert sorted(manifest["clip_id"]) == ["ABOUT/test/ABOUT_00012", "ACCESS/test/ACCESS_00002"]
    assert not (ctx.raw_root / "lipread_mp4" / "ABOUT" / "train").exists()


def test_corrupt_joined_archive_is_one_failed_row(tmp_path, fixture_server, lrw_tar):
    data = lrw_tar.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    _serve(fixture_server, cut)
    ctx = _context(tmp_path, fixture_server, {"LRW_USER": USER, "LRW_PASSWORD": PASSWORD})
    manifest = read_manifest(run_all(LRW(), ctx))
    row = manifest.set_index("clip_id").loc["lrw-v1.tar"]
    assert row["status"] == "failed"
    assert row["reason"].startswith("corrupt or truncated archive")
    assert "joined from 7 parts" in row["reason"]
    assert (manifest["status"] == "ok").sum() == 0
