"""LRS2 and LRS3 acquisition: licensed archives in their official layouts, split lists,
user-supplied copies, missing credentials, corrupt and refused members."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from dataset_media import make_tar, make_zip, split_parts
from talking_heads.cli import main as cli_main
from talking_heads.datasets.base import AcquireContext, read_index, run_all, stable_shard
from talking_heads.datasets.lrs import parse_transcript, stem_of
from talking_heads.datasets.lrs2 import LRS2, PARTS, parse_split_list
from talking_heads.datasets.lrs3 import LRS3, PRETRAIN_PARTS, split_of
from talking_heads.manifest import read_manifest

USER, PASSWORD = "lrs-reader", "pw-71c2ae-never-shown"
TXT = b"Text:  WHEN YOU'RE COOKING CHIPS AT HOME\nConf:  4\n\nWORD START END ASDSCORE\n"
LISTS = {
    "train.txt": (
        "5535415699068794046/00001\n5535415699068794046/00002\n6330311066473698535/00011\n"
    ),
    "val.txt": "6331559613336179781/00004\n6331559613336179781/00005\n",
    "test.txt": "6300370419826092098/00001 NF\n6300370419826092098/00002 MV\n",
    "pretrain.txt": "5535415699068794046/00001\n",
}


@dataclass
class Kit:
    clip: bytes
    lrs2: Path
    lrs3: dict[str, Path]


@pytest.fixture(scope="module")
def kit(media_kit, tmp_path_factory) -> Kit:
    """An LRS2 tar and the three LRS3 zips in their official layouts."""
    work = tmp_path_factory.mktemp("lrs-media")
    clip = media_kit.video(work / "clip.mp4", seconds=1.0, fps=25, size=(160, 160)).read_bytes()
    cut = clip[: len(clip) // 2]
    main = {
        "5535415699068794046/00001": (clip, TXT),
        "5535415699068794046/00002": (clip, TXT),
        "5535415699068794046/00099": (clip, TXT),  # in no split list
        "6330311066473698535/00011": (clip, b"Conf:  4\n"),  # no Text: line
        "6331559613336179781/00004": (clip, TXT),
        "6300370419826092098/00001": (clip, TXT),
        "6300370419826092098/00002": (cut, TXT),  # corrupt member
    }
    members = {}
    for key, (video, txt) in main.items():
        members[f"mvlrs_v1/main/{key}.mp4"], members[f"mvlrs_v1/main/{key}.txt"] = video, txt
    members["mvlrs_v1/main/6331559613336179781/00005.txt"] = TXT
    members["mvlrs_v1/pretrain/5535415699068794046/00001.mp4"] = clip
    members["mvlrs_v1/pretrain/5535415699068794046/00001.txt"] = TXT
    link = {"mvlrs_v1/main/6331559613336179781/00005.mp4": "/etc/passwd"}
    lrs2 = make_tar(work / "lrs2_v1.tar", members, symlinks=link)
    layout = {
        "trainval": {
            "0af00UcTOSc/00001": (clip, TXT),
            "0af00UcTOSc/00002": (clip, TXT),
            "5KQ5qaBU0GU/00001": (clip, TXT),
        },
        "test": {
            "0Fi83BHQsMA/00002": (clip, TXT),
            "0Fi83BHQsMA/00003": (cut, TXT),  # corrupt member
            "1JKDo1qe2LA/00001": (clip, None),  # transcript missing
        },
        "pretrain": {"0af00UcTOSc/00010": (clip, TXT)},
    }
    names = {"trainval": "lrs3_trainval.zip", "test": "lrs3_test_v0.4.zip"}
    lrs3 = {}
    for split, clips in layout.items():
        zipped: dict[str, Path | bytes] = {}
        for key, (video, txt) in clips.items():
            zipped[f"{split}/{key}.mp4"] = video
            if txt is not None:
                zipped[f"{split}/{key}.txt"] = txt
        name = names.get(split, "lrs3_pretrain.zip")
        lrs3[name] = make_zip(work / name, zipped)
    return Kit(clip, lrs2, lrs3)


def _serve(server, files: dict[str, Path], folder: str, split: str, parts: tuple) -> None:
    """Files behind basic auth, archive ``split`` published as byte-split ``parts``."""
    root = server.root / "lip_reading" / folder
    root.mkdir(parents=True)
    for name, path in files.items():
        shutil.copy(path, root / name)
    assert [p.name for p in split_parts(root / split, len(parts), parts[0][:-2])] == list(parts)
    (root / split).unlink()
    server.require_auth("/lip_reading/", USER, PASSWORD)


def _lists(root: Path) -> dict[str, Path]:
    for name, text in LISTS.items():
        (root / name).write_text(text)
    return {name: root / name for name in LISTS}


def _context(tmp_path: Path, name: str, server, environ: dict[str, str], **options):
    folder = "data2" if name == "lrs2" else "data3"
    return AcquireContext(
        name=name,
        raw_root=tmp_path / "raw" / name,
        data_root=tmp_path / "data" / name,
        mirrors={"official": f"{server.url}/lip_reading/{folder}"},
        environ=environ,
        jobs=3,
        progress=False,
        retries=1,
        backoff_s=0.01,
        **options,
    )


def _all_text(root: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


def _assert_sharded_by_speaker(ctx: AcquireContext) -> None:
    for shard in range(ctx.num_shards):
        speakers = read_manifest(ctx.manifest_shard(shard))["speaker"].dropna()
        assert all(stable_shard(s, ctx.num_shards) == shard for s in speakers)


CREDS2 = {"LRS2_USER": USER, "LRS2_PASSWORD": PASSWORD}
CREDS3 = {"LRS3_USER": USER, "LRS3_PASSWORD": PASSWORD}


def test_parsers() -> None:
    assert parse_transcript(TXT.decode()) == "WHEN YOU'RE COOKING CHIPS AT HOME"
    with pytest.raises(ValueError, match="no 'Text:"):
        parse_transcript("Conf:  4\n")
    assert parse_split_list(LISTS["test.txt"] + "\n") == [
        "6300370419826092098/00001",
        "6300370419826092098/00002",
    ]
    assert stem_of("./mvlrs_v1/main/1/00001.mp4") == "mvlrs_v1/main/1/00001"
    assert stem_of("mvlrs_v1/main/1") is None
    assert split_of("trainval/0af00UcTOSc/00001.txt") == "trainval"
    assert split_of("other/0af00UcTOSc/00001.txt") is None


def test_lrs2_parts_and_lists_under_basic_auth(tmp_path, fixture_server, kit, caplog):
    lists = _lists(tmp_path)
    _serve(fixture_server, {"lrs2_v1.tar": kit.lrs2, **lists}, "data2", "lrs2_v1.tar", PARTS)
    ctx = _context(tmp_path, "lrs2", fixture_server, CREDS2, num_shards=2)
    with caplog.at_level(logging.DEBUG):
        manifest = read_manifest(run_all(LRS2(), ctx))
    rows = manifest.set_index("clip_id")
    ok = rows[rows["status"] == "ok"]
    assert sorted(ok.index) == [
        "main/5535415699068794046/00001",
        "main/5535415699068794046/00002",
        "main/6300370419826092098/00001",
        "main/6331559613336179781/00004",
    ]
    # splits from the lists; speaker = video id; the clip as probed
    assert dict(ok["split"]) == {
        "main/5535415699068794046/00001": "train",
        "main/5535415699068794046/00002": "train",
        "main/6300370419826092098/00001": "test",
        "main/6331559613336179781/00004": "val",
    }
    assert all(ok["speaker"] == [i.split("/")[1] for i in ok.index])
    first = ok.loc["main/5535415699068794046/00001"]
    assert first["transcript"] == "WHEN YOU'RE COOKING CHIPS AT HOME"
    assert (first["width"], first["height"], first["num_frames"], first["fps"]) == (
        160,
        160,
        25,
        25,
    )

    malformed = rows.loc["main/6330311066473698535/00011"]
    assert malformed["status"] == "failed"
    assert malformed["reason"] == "annotation malformed: 00011.txt (no 'Text: <sentence>' line)"
    corrupt = rows.loc["main/6300370419826092098/00002"]
    assert corrupt["status"] == "failed" and "00002.mp4" in corrupt["reason"]
    assert corrupt["reason"].startswith(("unreadable media", "truncated video"))
    refused = rows.loc["lrs2_v1.tar/refused/000"]
    assert refused["status"] == "skipped"
    assert refused["reason"] == (
        "refused archive member: mvlrs_v1/main/6331559613336179781/00005.mp4 (symbolic link)"
    )
    # the refused clip has no second row; unlisted and pretrain clips were not extracted
    assert len(rows) == 7
    assert not (ctx.raw_root / "mvlrs_v1/main/5535415699068794046/00099.mp4").exists()
    assert not (ctx.raw_root / "mvlrs_v1" / "pretrain").exists()

    for part in PARTS:
        assert [r.status for r in fixture_server.requests_for(f"/lip_reading/data2/{part}")] == [
            200
        ]
    assembled = json.loads(ctx.assembled_path.read_text())["archives"]["lrs2_v1.tar"]
    assert set(ok["archive_md5"]) == {assembled["archive_md5"]}
    _assert_sharded_by_speaker(ctx)
    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    assert (stats["utterances"], stats["speakers"]) == (4, 3)
    assert stats["by_split"] == {"train": 2, "val": 1, "test": 1}

    assert PASSWORD not in _all_text(tmp_path / "raw") + _all_text(tmp_path / "data")
    assert PASSWORD not in caplog.text
    before = len(fixture_server.requests)
    run_all(LRS2(), ctx)
    assert len(fixture_server.requests) == before
    assembled = json.loads(ctx.assembled_path.read_text())["archives"]["lrs2_v1.tar"]
    assert assembled["resumed"] is True


def test_lrs2_without_credentials_names_variables_and_files(
    tmp_path, fixture_server, kit, monkeypatch, capsys
):
    _serve(
        fixture_server, {"lrs2_v1.tar": kit.lrs2, **_lists(tmp_path)}, "data2", "lrs2_v1.tar", PARTS
    )
    monkeypatch.delenv("LRS2_USER", raising=False)
    monkeypatch.delenv("LRS2_PASSWORD", raising=False)
    raw, data = tmp_path / "raw", tmp_path / "data"
    mirror = f"official={fixture_server.url}/lip_reading/data2"
    args = ["--root", str(raw), "--data-root", str(data), "--mirror", mirror, "--no-progress"]
    assert cli_main(["datasets", "download", "lrs2", *args]) == 0  # the run goes on
    assert "8  missing credentials" in capsys.readouterr().out
    manifest = read_manifest(data / "lrs2" / "manifest.parquet").set_index("clip_id")
    assert sorted(manifest.index) == sorted([*PARTS, "train.txt", "val.txt", "test.txt"])
    assert set(manifest["status"]) == {"failed"}
    missing = "missing credentials: set LRS2_USER and LRS2_PASSWORD (lrs2 official access)"
    supplied = raw / "lrs2" / "archives"
    assert (
        manifest.loc["lrs2_v1_partac", "reason"] == f"{missing}, or put lrs2_v1.tar in {supplied}"
    )
    assert manifest.loc["val.txt", "reason"] == f"{missing}, or put val.txt in {supplied}"
    assert fixture_server.requests == []
    # a user error is one line and exit status 2
    assert cli_main(["datasets", "download", "lrs2", "--subset", "main", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "lrs2: unknown subset(s) main; known: train, val, test" in err


def test_lrs2_supplied_archive_needs_no_credentials(tmp_path, fixture_server, kit):
    ctx = _context(tmp_path, "lrs2", fixture_server, {}, subsets=("test", "pretrain"))
    supplied = ctx.raw_root / "archives"
    supplied.mkdir(parents=True)
    shutil.copy(kit.lrs2, supplied / "lrs2_v1.tar")
    _lists(supplied)
    manifest = read_manifest(run_all(LRS2(), ctx))
    assert fixture_server.requests == []
    assert set(read_index(ctx)["unit_id"]) == {"lrs2_v1.tar", "test.txt", "pretrain.txt"}
    ok = manifest[manifest["status"] == "ok"].set_index("clip_id")
    assert dict(ok["split"]) == {
        "main/6300370419826092098/00001": "test",
        "pretrain/5535415699068794046/00001": "pretrain",
    }
    assert not (ctx.raw_root / "mvlrs_v1/main/5535415699068794046").exists()


def test_lrs3_default_subsets_fetch_trainval_and_test(tmp_path, fixture_server, kit):
    _serve(fixture_server, kit.lrs3, "data3", "lrs3_pretrain.zip", PRETRAIN_PARTS)
    ctx = _context(tmp_path, "lrs3", fixture_server, CREDS3, num_shards=2)
    manifest = read_manifest(run_all(LRS3(), ctx))
    rows = manifest.set_index("clip_id")
    ok = rows[rows["status"] == "ok"]
    assert dict(ok["split"]) == {
        "trainval/0af00UcTOSc/00001": "trainval",
        "trainval/0af00UcTOSc/00002": "trainval",
        "trainval/5KQ5qaBU0GU/00001": "trainval",
        "test/0Fi83BHQsMA/00002": "test",
    }
    assert all(ok["speaker"] == [i.split("/")[1] for i in ok.index])
    corrupt = rows.loc["test/0Fi83BHQsMA/00003"]
    assert corrupt["status"] == "failed" and "00003.mp4" in corrupt["reason"]
    bare = rows.loc["test/1JKDo1qe2LA/00001"]
    assert (bare["status"], bare["reason"]) == ("failed", "annotation missing: 00001.txt")
    assert len(rows) == 6
    fetched = {r.path.rsplit("/", 1)[-1] for r in fixture_server.requests}
    assert fetched == {"lrs3_trainval.zip", "lrs3_test_v0.4.zip"}  # no pretrain part
    assembled = json.loads(ctx.assembled_path.read_text())["archives"]
    for archive, md5 in ok.groupby("unit_id")["archive_md5"]:
        assert set(md5) == {assembled[archive]["archive_md5"]}
    _assert_sharded_by_speaker(ctx)
    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    assert (stats["utterances"], stats["speakers"]) == (4, 3)


def test_lrs3_pretrain_parts_are_joined(tmp_path, fixture_server, kit):
    _serve(fixture_server, kit.lrs3, "data3", "lrs3_pretrain.zip", PRETRAIN_PARTS)
    ctx = _context(tmp_path, "lrs3", fixture_server, CREDS3, subsets=("pretrain",))
    manifest = read_manifest(run_all(LRS3(), ctx))
    assert list(manifest["clip_id"]) == ["pretrain/0af00UcTOSc/00010"]
    assert manifest["status"].tolist() == ["ok"] and manifest["split"].tolist() == ["pretrain"]
    for part in PRETRAIN_PARTS:
        assert len(fixture_server.requests_for(f"/lip_reading/data3/{part}")) == 1
    assert not list(ctx.raw_root.rglob("*.zip"))


def test_lrs3_supplied_and_missing_archives(tmp_path, fixture_server, kit):
    ctx = _context(tmp_path, "lrs3", fixture_server, {})
    supplied = ctx.raw_root / "archives"
    supplied.mkdir(parents=True)
    shutil.copy(kit.lrs3["lrs3_trainval.zip"], supplied)
    manifest = read_manifest(run_all(LRS3(), ctx)).set_index("clip_id")
    assert fixture_server.requests == []
    assert (manifest["split"] == "trainval").sum() == 3
    assert set(manifest.loc[manifest["split"] == "trainval", "status"]) == {"ok"}
    missing = manifest.loc["lrs3_test_v0.4.zip"]
    assert missing["status"] == "failed"
    assert missing["reason"] == (
        "missing credentials: set LRS3_USER and LRS3_PASSWORD (lrs3 official access), "
        f"or put lrs3_test_v0.4.zip in {supplied}"
    )


def test_lrs3_truncated_supplied_archive_is_one_failed_row(tmp_path, fixture_server, kit):
    ctx = _context(tmp_path, "lrs3", fixture_server, {}, subsets=("test",))
    supplied = ctx.raw_root / "archives"
    supplied.mkdir(parents=True)
    data = kit.lrs3["lrs3_test_v0.4.zip"].read_bytes()
    (supplied / "lrs3_test_v0.4.zip").write_bytes(data[: len(data) // 2])
    manifest = read_manifest(run_all(LRS3(), ctx))
    assert manifest["clip_id"].tolist() == ["lrs3_test_v0.4.zip"]
    assert manifest["status"].tolist() == ["failed"]
    assert manifest["reason"][0].startswith("corrupt or truncated archive")
    assert manifest["reason"][0].endswith(": lrs3_test_v0.4.zip")
    assert pd.isna(manifest["speaker"][0])
