"""VoxCeleb1/2 acquisition against a loopback server: every source, assembly, YouTube cuts, FOMM.

Fixtures are built in the real formats: byte-split zips of ``wav/idXXXXX/<ytid>/NNNNN.wav``,
``mp4/``/``test/aac/`` layouts, face-track txt files with their tab-and-trailing-space table,
``vox1_meta.csv`` (tab-separated), ``vox2_meta.csv``, ``iden_split.txt``, voxceleb_trainer md5
lists and rows of the real ``vox-metadata.csv``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dataset_media import MediaKit, make_zip, md5_of, split_parts
from fixture_server import FixtureServer
from talking_heads.datasets.base import AcquireContext, run_all, stable_shard
from talking_heads.datasets.voxceleb import (
    FOMM_EXPECTED_COUNTS,
    NO_PUBLISHED_MD5,
    PUBLISHED_MD5,
    VOX1_TEST_IDS,
    VOX2_TEST_IDS,
    VoxCeleb1,
    VoxCeleb2,
    fomm_chunks,
    fomm_test_chunks,
    load_fomm_metadata,
    parse_track,
    rescale_fomm_bbox,
)

USER, PASSWORD = "voxuser", "pw-9f3b1c-not-in-logs"
KAIST_KEY = "kaist-key-4e7a2d-secret"

VOX1_TRACK = (
    "Identity  : \tid10270\n"
    "Reference : \t5r0dWxy17C8\n"
    "Offset    : \t-1\n"
    "FV Conf   : \t17.997\t(1)\n"
    "ASD Conf  : \t6.338\n"
    "\n"
    "FRAME \tX \tY \tW \tH\n"
    "002316 \t223 \t80 \t130 \t130\n"
    "002317 \t223 \t80 \t130 \t130\n"
    "002318 \t218 \t75 \t130 \t130\n"
)
VOX2_TRACK = (
    "Identity  : \tid00012\n"
    "Reference : \t_raOc3-IRsw\n"
    "Offset    : \t2\n"
    "FV Conf   : \t20.230\t(1)\n"
    "ASD Conf  : \t2.765\n"
    "\n"
    "FRAME \tX \tY \tW \tH \n"
    "000349 \t0.319 \t0.067 \t0.424 \t0.753 \n"
    "000350 \t0.319 \t0.067 \t0.424 \t0.753 \n"
)
#: real rows of vox-metadata.csv (two train rows of id10005, three test rows of id10280)
FOMM_REAL_ROWS = (
    "video_id,start,end,bbox,fps,width,height,partition,person_id\n"
    "WMh3ye5tBsE,3657,3994,624-48-1018-553,25,1280,720,train,id10005\n"
    "WMh3ye5tBsE,3467,3576,610-41-989-550,25,1280,720,train,id10005\n"
    "WMh3ye5tBsE,3657,3994,624-48-1018-553,25,1280,720,train,id10005\n"
    "NXjT3732Ekg,1093,1192,92-0-360-354,25,640,360,test,id10280\n"
    "XiKRlssBw2M,330,1148,382-43-849-595,25,1280,720,test,id10280\n"
    "XiKRlssBw2M,1538,2000,432-16-833-600,25,1280,720,test,id10280\n"
)


def track_text(identity: str, video_id: str, first: int, count: int, *, fraction: bool) -> str:
    """A face-track txt in the real format for ``count`` frames from ``first``."""
    rows = "".join(
        f"{first + i:06d} \t0.300 \t0.100 \t0.400 \t0.700 \n"
        if fraction
        else f"{first + i:06d} \t120 \t40 \t130 \t130\n"
        for i in range(count)
    )
    return (
        f"Identity  : \t{identity}\nReference : \t{video_id}\nOffset    : \t0\n"
        f"FV Conf   : \t15.000\t(1)\nASD Conf  : \t5.000\n\nFRAME \tX \tY \tW \tH\n{rows}"
    )


def serve(server: FixtureServer, rel: str, data: bytes | Path) -> Path:
    path = server.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.read_bytes())
    return path


def context(tmp_path: Path, name: str, **options: Any) -> AcquireContext:
    defaults: dict[str, Any] = {
        "jobs": 2,
        "progress": False,
        "retries": 1,
        "backoff_s": 0.01,
        "environ": {},
    }
    return AcquireContext(
        name=name,
        raw_root=tmp_path / "data" / "raw" / name,
        data_root=tmp_path / "data" / name,
        **{**defaults, **options},
    )


def manifest_of(ctx: AcquireContext) -> pd.DataFrame:
    return pd.read_parquet(ctx.manifest_path)


def every_text(root: Path) -> str:
    """Every file under ``root`` (parquet, json, txt) as text, to look for leaked secrets."""
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


# --- the Vox1 archive fixture ----------------------------------------------------------------

DEV_CLIPS = (
    "id10001/1zcIwhmdeo4/00001",
    "id10001/1zcIwhmdeo4/00002",
    "id10002/xTV-jFAUKcw/00001",
    "id10003/na8-QEFmj44/00001",
)
TEST_CLIPS = ("id10270/5r0dWxy17C8/00001", "id10271/1gtz-CUIygI/00001")


@pytest.fixture
def vox1_files(tmp_path: Path, media_kit: MediaKit) -> dict[str, Path]:
    """The Vox1 files as published: four dev parts, the test zip, txt, meta and md5 lists."""
    work = tmp_path / "build"
    wav = media_kit.audio(work / "speech.wav", seconds=0.5)
    dev = make_zip(work / "vox1_dev_wav.zip", {f"wav/{c}.wav": wav for c in DEV_CLIPS})
    parts = split_parts(dev, 4, "vox1_dev_wav_part")
    test = make_zip(work / "vox1_test_wav.zip", {f"wav/{c}.wav": wav for c in TEST_CLIPS})
    test_txt = make_zip(
        work / "vox1_test_txt.zip",
        {f"txt/{TEST_CLIPS[0]}.txt": VOX1_TRACK.encode()},
    )
    files = {p.name: p for p in parts}
    files.update({p.name: p for p in (dev, test, test_txt)})
    lists = work / "lists"
    lists.mkdir()
    (lists / "fileparts.txt").write_text(
        "".join(f"{p.name} {md5_of(p)}\n" for p in parts) + f"vox1_test_wav.zip {md5_of(test)}\n"
    )
    (lists / "files.txt").write_text(f"vox1_dev_wav_parta* vox1_dev_wav.zip {md5_of(dev)}\n")
    (work / "vox1_meta.csv").write_text(
        "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
        "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
        "id10002\tA.R._Rahman\tm\tIndia\tdev\n"
        "id10003\tAamir_Khan\tm\tIndia\tdev\n"
        "id10270\tEddie_Izzard\tm\tUK\ttest\n"
        "id10271\tEd_Westwick\tm\tUK\ttest\n"
    )
    (work / "iden_split.txt").write_text(
        "1 id10001/1zcIwhmdeo4/00001.wav\n2 id10001/1zcIwhmdeo4/00002.wav\n"
        "3 id10002/xTV-jFAUKcw/00001.wav\n"
    )
    files.update(
        {
            "fileparts.txt": lists / "fileparts.txt",
            "files.txt": lists / "files.txt",
            "vox1_meta.csv": work / "vox1_meta.csv",
            "iden_split.txt": work / "iden_split.txt",
        }
    )
    return files


def serve_vox1_official(server: FixtureServer, files: dict[str, Path]) -> dict[str, str]:
    for name in (
        "vox1_test_wav.zip",
        "vox1_test_txt.zip",
        *(f"vox1_dev_wav_parta{c}" for c in "abcd"),
    ):
        serve(server, f"vox1a/{name}", files[name])
    for name in ("fileparts.txt", "files.txt"):
        serve(server, f"lists/{name}", files[name])
    for name in ("vox1_meta.csv", "iden_split.txt"):
        serve(server, f"meta/{name}", files[name])
    server.require_auth("/vox1a", USER, PASSWORD)
    return {
        "official": f"{server.url}/vox1a",
        "checksums": f"{server.url}/lists",
        "meta": f"{server.url}/meta",
    }


# --- 1. official route -----------------------------------------------------------------------


def test_official_route_joins_verifies_and_scans_vox1(
    tmp_path: Path,
    fixture_server: FixtureServer,
    vox1_files: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="talking_heads")
    ctx = context(
        tmp_path,
        "voxceleb1",
        subsets=("dev_wav", "test_wav", "test_txt", "meta"),
        num_shards=3,
        mirrors=serve_vox1_official(fixture_server, vox1_files),
        environ={"VOXCELEB_USER": USER, "VOXCELEB_PASSWORD": PASSWORD},
    )
    run_all(VoxCeleb1(), ctx)
    manifest = manifest_of(ctx)
    assert set(manifest["clip_id"]) == set(DEV_CLIPS + TEST_CLIPS)
    assert (manifest["status"] == "ok").all(), manifest[["clip_id", "reason"]]
    rows = manifest.set_index("clip_id")
    # iden_split.txt decides where it lists a clip; the archive (dev/test) elsewhere
    assert rows.loc["id10001/1zcIwhmdeo4/00001", "split"] == "train"
    assert rows.loc["id10001/1zcIwhmdeo4/00002", "split"] == "val"
    assert rows.loc["id10002/xTV-jFAUKcw/00001", "split"] == "test"
    assert rows.loc["id10003/na8-QEFmj44/00001", "split"] == "dev"
    assert rows.loc["id10270/5r0dWxy17C8/00001", "split"] == "test"
    assert set(rows.loc[list(TEST_CLIPS), "archive_split"]) == {"test"}
    assert rows.loc["id10270/5r0dWxy17C8/00001", "speaker"] == "id10270"
    assert rows.loc["id10002/xTV-jFAUKcw/00001", "nationality"] == "India"
    assert set(rows["kind"]) == {"audio"}
    assert set(rows["audio_rate"]) == {16000}
    assert np.allclose(rows["duration_s"].astype(float), 0.5, atol=0.01)
    assert set(rows.loc[list(DEV_CLIPS), "unit_id"]) == {"vox1_dev_wav.zip"}
    assert set(rows["checksum"]) == {"md5 verified"}
    # the face track rides along with its utterance
    track = ctx.data_root / rows.loc["id10270/5r0dWxy17C8/00001", "track"]
    assert track.read_text() == VOX1_TRACK
    assert pd.isna(rows.loc["id10271/1gtz-CUIygI/00001", "track"])
    for clip, row in rows.iterrows():
        path = ctx.data_root / row["path"]
        assert path.is_file() and path.suffix == ".wav" and path.parent.parent.name == clip[:7]
    assert (ctx.raw_root / "dev_wav" / "wav" / "id10003" / "na8-QEFmj44" / "00001.wav").is_file()
    # shards: parts spread over shards, each clip scanned by the shard of its speaker
    index = pd.read_parquet(ctx.index_path)
    parts = index[index["kind"] == "archive-part"]
    assert len(parts) == 4 and parts["md5"].notna().all()
    assert parts["shard"].nunique() > 1
    for shard in range(3):
        part = pd.read_parquet(ctx.manifest_shard(shard))
        assert all(stable_shard(s, 3) == shard for s in part["speaker"])
    assembled = json.loads(ctx.assembled_path.read_text())["archives"]["vox1_dev_wav.zip"]
    assert assembled["status"] == "ok" and assembled["checksum"] == "md5 verified"
    assert assembled["extracted"] == len(DEV_CLIPS)
    # every protected request carried the credentials; the password is nowhere recorded
    protected = [r for r in fixture_server.requests if r.path.startswith("/vox1a")]
    assert protected and {r.status for r in protected} <= {200, 206}
    assert PASSWORD not in every_text(tmp_path / "data")
    assert PASSWORD not in caplog.text
    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    assert stats["utterances"] == 6 and stats["speakers"] == 5
    assert stats["hours"] == pytest.approx(6 * 0.5 / 3600, rel=0.05)
    # a second run finds everything in place and fetches no archive bytes again
    before = len(protected)
    run_all(VoxCeleb1(), ctx)
    again = [r for r in fixture_server.requests if r.path.startswith("/vox1a")]
    assert len(again) == before
    assert (manifest_of(ctx)["status"] == "ok").all()


# --- 2. missing credentials ------------------------------------------------------------------


def test_missing_credentials_fail_every_archive_unit_without_a_request(
    tmp_path: Path, fixture_server: FixtureServer, vox1_files: dict[str, Path]
) -> None:
    ctx = context(
        tmp_path,
        "voxceleb1",
        subsets=("dev_wav", "test_wav", "meta"),
        num_shards=2,
        mirrors=serve_vox1_official(fixture_server, vox1_files),
        environ={"VOXCELEB_KAIST_KEY": KAIST_KEY},
    )
    run_all(VoxCeleb1(), ctx)
    manifest = manifest_of(ctx).set_index("clip_id")
    archives = [f"vox1_dev_wav_parta{c}" for c in "abcd"] + ["vox1_test_wav.zip"]
    assert set(archives) <= set(manifest.index)
    for unit in archives:
        assert manifest.loc[unit, "status"] == "failed"
        assert manifest.loc[unit, "reason"].startswith(
            "missing credentials: set VOXCELEB_USER and VOXCELEB_PASSWORD"
        )
    # public metadata still arrives; nothing was asked of the protected server
    assert (ctx.raw_root / "meta" / "vox1_meta.csv").is_file()
    assert not [r for r in fixture_server.requests if r.path.startswith("/vox1a")]
    assert not (manifest["status"] == "ok").any()
    assert KAIST_KEY not in every_text(tmp_path / "data")


# --- 3. checksum mismatches ------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["part", "joined"])
def test_checksum_mismatch_fails_its_row_and_the_run_goes_on(
    tmp_path: Path, fixture_server: FixtureServer, vox1_files: dict[str, Path], broken: str
) -> None:
    mirrors = serve_vox1_official(fixture_server, vox1_files)
    if broken == "part":
        listing = fixture_server.root / "lists" / "fileparts.txt"
        listing.write_text(
            listing.read_text().replace(md5_of(vox1_files["vox1_dev_wav_partab"]), "0" * 32)
        )
    else:
        (fixture_server.root / "lists" / "files.txt").write_text(
            f"vox1_dev_wav_parta* vox1_dev_wav.zip {'f' * 32}\n"
        )
    ctx = context(
        tmp_path,
        "voxceleb1",
        subsets=("dev_wav", "test_wav"),
        mirrors=mirrors,
        environ={"VOXCELEB_USER": USER, "VOXCELEB_PASSWORD": PASSWORD},
    )
    run_all(VoxCeleb1(), ctx)
    manifest = manifest_of(ctx).set_index("clip_id")
    failed = manifest[manifest["status"] == "failed"]
    if broken == "part":
        assert list(failed.index) == ["vox1_dev_wav_partab"]
        assert failed.iloc[0]["reason"].startswith(
            "checksum mismatch: md5 of vox1_dev_wav_partab is "
            f"{md5_of(vox1_files['vox1_dev_wav_partab'])}"
        )
        archives = ctx.raw_root / "archives"
        assert not (archives / "vox1_dev_wav_partab").exists()
        assert not (archives / "vox1_dev_wav_partab.part").exists()
        assert (archives / "vox1_dev_wav_partac").is_file()
        outcome = json.loads(ctx.assembled_path.read_text())["archives"]["vox1_dev_wav.zip"]
        assert outcome["status"] == "incomplete" and "vox1_dev_wav_partab" in outcome["reason"]
    else:
        assert list(failed.index) == ["vox1_dev_wav.zip"]
        assert failed.iloc[0]["reason"].startswith(
            "checksum mismatch: md5 of joined vox1_dev_wav.zip is "
            f"{md5_of(vox1_files['vox1_dev_wav.zip'])}, expected {'f' * 32}"
        )
    assert not (ctx.raw_root / "dev_wav").exists()
    # the test archive is unaffected
    ok = manifest[manifest["status"] == "ok"]
    assert set(ok.index) == set(TEST_CLIPS)


# --- 4. YouTube route (face tracks and FOMM chunks) ------------------------------------------

LIVE, DEAD = "5r0dWxy17C8", "DeadVideo01"
#: (clip id, first frame, frames)
LIVE_TRACKS = ((f"id10270/{LIVE}/00001", 10, 25), (f"id10270/{LIVE}/00002", 40, 20))
DEAD_TRACKS = ((f"id10271/{DEAD}/00001", 5, 30),)


def test_youtube_route_cuts_tracks_and_fomm_chunks_and_fails_dead_videos(
    tmp_path: Path, fixture_server: FixtureServer, media_kit: MediaKit
) -> None:
    work = tmp_path / "build"
    video = media_kit.video(work / f"{LIVE}.mp4", seconds=3.0, fps=25, size=(320, 240))
    serve(fixture_server, f"youtube/{LIVE}.mp4", video)
    txt = {
        f"txt/{clip}.txt": track_text(
            clip[:7], clip.split("/")[1], first, n, fraction=False
        ).encode()
        for clip, first, n in LIVE_TRACKS + DEAD_TRACKS
    }
    serve(fixture_server, "hf/vox1/vox1_test_txt.zip", make_zip(work / "t.zip", txt))
    fomm = (
        "video_id,start,end,bbox,fps,width,height,partition,person_id\n"
        f"{LIVE},10,35,40-20-200-220,25,640,480,test,id10270\n"
        f"{LIVE},10,35,40-20-200-220,25,640,480,test,id10270\n"
        f"{LIVE},30,60,100-10-260-170,25,320,240,train,id10270\n"
        f"{DEAD},0,40,10-10-90-90,25,320,240,test,id10271\n"
    )
    serve(fixture_server, "fomm/vox-metadata.csv", fomm.encode())
    ctx = context(
        tmp_path,
        "voxceleb1",
        source="youtube",
        subsets=("test_txt", "fomm"),
        num_shards=2,
        mirrors={
            "hf": f"{fixture_server.url}/hf",
            "fomm": f"{fixture_server.url}/fomm",
            "youtube": f"{fixture_server.url}/youtube/{{video_id}}.mp4",
        },
    )
    run_all(VoxCeleb1(), ctx)
    index = pd.read_parquet(ctx.index_path)
    assert set(index["unit_id"]) == {f"youtube/{DEAD}", f"youtube/{LIVE}"}
    assert set(index["group"]) == {"id10270", "id10271"}
    manifest = manifest_of(ctx).set_index("clip_id")
    tracks = {clip for clip, _, _ in LIVE_TRACKS + DEAD_TRACKS}
    chunks = {
        "fomm/test/id10270#5r0dWxy17C8#000010#000035",
        "fomm/train/id10270#5r0dWxy17C8#000030#000060",
        "fomm/test/id10271#DeadVideo01#000000#000040",
    }
    assert set(manifest.index) == tracks | chunks
    for clip, first, frames in LIVE_TRACKS:
        row = manifest.loc[clip]
        assert row["status"] == "ok", row["reason"]
        assert row["num_frames"] == frames
        assert row["fps"] == pytest.approx(25.0)
        assert row["duration_s"] == pytest.approx(frames / 25, abs=0.05)
        assert (row["first_frame"], row["last_frame"]) == (first, first + frames - 1)
        assert row["path"] == f"clips/{clip}.mp4" and (ctx.data_root / row["path"]).is_file()
        assert row["box_format"] == "pixels@360p" and row["split"] == "test"
        assert parse_track((ctx.data_root / row["track"]).read_text()).first_frame == first
    chunk = manifest.loc["fomm/test/id10270#5r0dWxy17C8#000010#000035"]
    assert chunk["status"] == "ok", chunk["reason"]
    assert (chunk["width"], chunk["height"], chunk["num_frames"]) == (256, 256, 25)
    assert chunk["chunk"] == "id10270#5r0dWxy17C8#000010#000035" and chunk["split"] == "test"
    # the 640x480 reference box, halved for the 320x240 download
    assert (chunk["crop_x"], chunk["crop_y"], chunk["crop_w"], chunk["crop_h"]) == (20, 10, 80, 100)
    assert manifest.loc["fomm/train/id10270#5r0dWxy17C8#000030#000060", "num_frames"] == 30
    for clip in [c for c, _, _ in DEAD_TRACKS] + ["fomm/test/id10271#DeadVideo01#000000#000040"]:
        row = manifest.loc[clip]
        assert row["status"] == "failed"
        assert row["reason"].startswith("yt-dlp: ") and "404" in row["reason"]
        assert not (ctx.data_root / row["path"]).exists()
    dead = [r for r in fixture_server.requests if r.path == f"/youtube/{DEAD}.mp4"]
    assert dead and {r.status for r in dead} == {404}
    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    assert stats["utterances"] == 2 and stats["speakers"] == 1


# --- 5. FOMM metadata ------------------------------------------------------------------------


def test_fomm_metadata_names_chunks_exactly_and_splits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="talking_heads.datasets.voxceleb"):
        metadata = load_fomm_metadata(FOMM_REAL_ROWS)
    assert "differ from the published file" in caplog.text and str(FOMM_EXPECTED_COUNTS) in (
        caplog.text
    )
    assert metadata["chunk"].iloc[0] == "id10005#WMh3ye5tBsE#003657#003994"
    assert metadata["start"].dtype == np.int64 and metadata["video_id"].iloc[3] == "NXjT3732Ekg"
    assert fomm_test_chunks(metadata) == [
        "id10280#NXjT3732Ekg#001093#001192",
        "id10280#XiKRlssBw2M#000330#001148",
        "id10280#XiKRlssBw2M#001538#002000",
    ]
    unique = fomm_chunks(metadata)
    assert unique["partition"].value_counts().to_dict() == {"test": 3, "train": 2}
    assert set(unique.loc[unique["partition"] == "train", "person_id"]) == {"id10005"}
    # 1280x720 reference box on a 640x360 download: halved, as load_videos.py rescales it
    assert rescale_fomm_bbox("624-48-1018-553", 1280, 720, 640, 360) == (312, 24, 197, 252)
    assert rescale_fomm_bbox("92-0-360-354", 640, 360, 640, 360) == (92, 0, 268, 354)
    with pytest.raises(ValueError, match="lacks column"):
        load_fomm_metadata("video_id,start\nabc,1\n")
    assert set(unique.loc[unique["partition"] == "test", "person_id"]) <= VOX1_TEST_IDS


# --- 6. face-track parser --------------------------------------------------------------------


def test_track_parser_reads_vox1_pixel_and_vox2_fraction_boxes() -> None:
    vox1 = parse_track(VOX1_TRACK)
    assert (vox1.identity, vox1.youtube_id, vox1.offset) == ("id10270", "5r0dWxy17C8", -1)
    assert (vox1.fv_conf, vox1.asd_conf) == (17.997, 6.338)
    assert vox1.frames.tolist() == [2316, 2317, 2318]
    assert vox1.boxes.tolist()[2] == [218, 75, 130, 130]
    assert not vox1.normalised
    assert (vox1.start_s, vox1.end_s) == (2316 / 25, 2319 / 25)
    # pixels of the 360 p frame: doubled on a 1280x720 download
    assert vox1.pixel_boxes(1280, 720)[0].tolist() == [446, 160, 260, 260]

    vox2 = parse_track(VOX2_TRACK)
    assert (vox2.identity, vox2.youtube_id, vox2.offset) == ("id00012", "_raOc3-IRsw", 2)
    assert (vox2.fv_conf, vox2.asd_conf) == (20.23, 2.765)
    assert vox2.frames.tolist() == [349, 350] and vox2.normalised
    assert vox2.boxes.shape == (2, 4) and vox2.boxes[0].tolist() == [0.319, 0.067, 0.424, 0.753]
    assert np.allclose(vox2.pixel_boxes(224, 224)[0], [71.456, 15.008, 94.976, 168.672])
    assert parse_track(VOX2_TRACK.replace("\n", "\r\n"), normalised=True).frames.size == 2
    with pytest.raises(ValueError, match="FRAME"):
        parse_track("Identity  : \tid10270\n")


# --- 7. KAIST source -------------------------------------------------------------------------


def test_kaist_key_travels_in_the_url_only(
    tmp_path: Path,
    fixture_server: FixtureServer,
    vox1_files: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")  # request lines
    serve(fixture_server, "download/voxceleb", vox1_files["vox1_test_wav.zip"])
    serve(fixture_server, "lists/fileparts.txt", vox1_files["fileparts.txt"])
    environ = {"VOXCELEB_KAIST_KEY": KAIST_KEY}
    ctx = context(
        tmp_path,
        "voxceleb1",
        source="kaist",
        subsets=("test_wav",),
        mirrors={
            "kaist": f"{fixture_server.url}/download/voxceleb",
            "checksums": f"{fixture_server.url}/lists",
        },
        environ=environ,
    )
    dataset = VoxCeleb1()
    assert dataset.session(ctx).auth is None
    run_all(dataset, ctx)
    manifest = manifest_of(ctx)
    assert set(manifest["clip_id"]) == set(TEST_CLIPS) and (manifest["status"] == "ok").all()
    sent = fixture_server.requests_for("/download/voxceleb")
    assert sent and all(
        f"key={KAIST_KEY}" in r.query and "file=vox1_test_wav.zip" in r.query for r in sent
    )
    index = pd.read_parquet(ctx.index_path)
    assert index["url"].iloc[0].endswith("/download/voxceleb?key=***&file=vox1_test_wav.zip")
    assert set(manifest["source"]) == {index["url"].iloc[0]}

    # a dead mirror: the reason names the URL with the key masked
    dead = context(
        tmp_path / "dead",
        "voxceleb1",
        source="kaist",
        subsets=("test_wav",),
        mirrors={
            "kaist": f"{fixture_server.url}/missing",
            "checksums": f"{fixture_server.url}/lists",
        },
        environ=environ,
    )
    run_all(dataset, dead)
    (reason,) = manifest_of(dead)["reason"]
    assert reason.startswith("HTTP 404 not found") and "key=***" in reason
    assert KAIST_KEY not in every_text(tmp_path / "data")
    assert KAIST_KEY not in every_text(tmp_path / "dead" / "data")
    assert KAIST_KEY not in caplog.text
    assert "/download/voxceleb?key=***&file=vox1_test_wav.zip" in caplog.text


# --- Vox2 layouts on the Hugging Face copy ---------------------------------------------------


def test_vox2_hf_joins_video_and_audio_rows_across_zip_prefixes(
    tmp_path: Path, fixture_server: FixtureServer, media_kit: MediaKit
) -> None:
    work = tmp_path / "build"
    mp4 = media_kit.video(work / "clip.mp4", seconds=0.6, fps=25, size=(224, 224))
    m4a = media_kit.audio(work / "clip.m4a", seconds=0.6)
    clips = ("id00017/01dfn2spqyE/00001", "id00017/01dfn2spqyE/00002", "id00061/0G9G9oyFHI8/00001")
    # the video zip has no prefix, the audio zip a test/ one: both layouts are found
    test_mp4 = make_zip(work / "vox2_test_mp4.zip", {f"mp4/{c}.mp4": mp4 for c in clips})
    test_aac = make_zip(work / "vox2_test_aac.zip", {f"test/aac/{c}.m4a": m4a for c in clips[:2]})
    for archive in (test_mp4, test_aac):
        serve(fixture_server, f"hf/vox2/{archive.name}", archive)
    serve(fixture_server, "lists/fileparts.txt", f"vox2_test_aac.zip {md5_of(test_aac)}\n".encode())
    serve(fixture_server, "lists/files.txt", b"")
    serve(
        fixture_server,
        "hf/vox2/vox2_meta.csv",
        b"VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \nid00017 ,n000017 ,f ,test \n"
        b"id00061 ,n000061 ,m ,test \n",
    )
    ctx = context(
        tmp_path,
        "voxceleb2",
        source="hf",
        subsets=("test_mp4", "test_aac", "meta"),
        mirrors={"hf": f"{fixture_server.url}/hf", "checksums": f"{fixture_server.url}/lists"},
    )
    run_all(VoxCeleb2(), ctx)
    manifest = manifest_of(ctx).set_index("clip_id")
    assert set(manifest.index) == set(clips)
    assert (manifest["status"] == "ok").all(), manifest["reason"]
    assert set(manifest["kind"]) == {"video"} and set(manifest["split"]) == {"test"}
    assert set(manifest["width"]) == {224} and set(manifest["num_frames"]) == {15}
    assert set(manifest["checksum"]) == {NO_PUBLISHED_MD5}
    assert manifest.loc[clips[0], "audio_path"].endswith("test_aac/test/aac/" + clips[0] + ".m4a")
    assert pd.isna(manifest.loc[clips[2], "audio_path"])
    assert manifest.loc[clips[0], "gender"] == "f" and manifest.loc[clips[2], "gender"] == "m"
    assert {c[:7] for c in clips} <= VOX2_TEST_IDS
    index = pd.read_parquet(ctx.index_path).set_index("unit_id")
    assert pd.isna(index.loc["vox2_test_mp4.zip", "md5"])
    assert index.loc["vox2_test_aac.zip", "md5"] == md5_of(test_aac)
    assert PUBLISHED_MD5["vox2_test_aac.zip"] != md5_of(test_aac)  # the served list won
