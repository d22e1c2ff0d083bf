"""HDTF acquisition against a loopback server: annotation parsing, yt-dlp sections, crops, split.

The annotation files are written in the real formats of ``MRzzm/HDTF/HDTF_dataset`` (lines
copied from the published files: the BOM of ``WDA_video_url.txt``, ``&t=`` URLs, the trailing
space of some ``annotion_time`` lines, no newline at the end of a file, resolution 0, the video
without interval, the YouTube id listed twice, intervals without a crop box). "YouTube" videos
are plain mp4s of the demo talking face served with Range support, fetched through yt-dlp.
"""

from __future__ import annotations

import json
from pathlib import Path

import decord
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dataset_media import MediaKit
from fixture_server import FixtureServer
from talking_heads.datasets.base import AcquireContext, run_all, run_index
from talking_heads.datasets.hdtf import (
    ANNOTATION_FILES,
    HDTF,
    CropBox,
    box_height,
    load_subset,
    parse_crop_boxes,
    parse_crop_ratios,
    parse_intervals,
    parse_resolutions,
    parse_video_urls,
    scale_crop,
    speaker_of,
    split_of,
    youtube_id,
)
from talking_heads.utils.media import probe_video

BOM = "\ufeff"

#: lines of the published files (WDA excerpt), in their order and spacing
WDA_REAL = {
    "video_url": BOM + "CarolynMaloney2 https://www.youtube.com/watch?v=RApGxN-O9Qc\n"
    "WhipJimClyburn https://www.youtube.com/watch?v=gh3YqnvNdio\n"
    "MazieHirono1 https://www.youtube.com/watch?v=pwsLS6MMumw\n"
    "JamesClyburn https://www.youtube.com/watch?v=eKqPmFleCy0\n"
    "JamesClyburn1 https://www.youtube.com/watch?v=gh3YqnvNdio&t=5s\n"
    "JimMcGovern https://www.youtube.com/watch?v=5B81KGjaCRY\n"
    "AmyKlobuchar1 https://www.youtube.com/watch?v=EyHSdWDYm1M",
    "resolution": "AmyKlobuchar1.mp4 1080\nCarolynMaloney2.mp4 720\nJamesClyburn.mp4 720\n"
    "JamesClyburn1.mp4 1080\nJimMcGovern.mp4 720\nMazieHirono1.mp4 720\n"
    "WhipJimClyburn.mp4 1080",
    "annotion_time": "AmyKlobuchar1.mp4 00:35-02:45 03:25-04:00 05:05-06:05 06:45-07:40\n"
    "CarolynMaloney2.mp4 00:05-05:00\nJamesClyburn.mp4 00:05-04:40\n"
    "JamesClyburn1.mp4 00:05-04:40\nJimMcGovern.mp4 00:05-02:10\n"
    "MazieHirono1.mp4 00:05-03:40\nWhipJimClyburn.mp4 00:05-04:40",
    "crop_wh": "AmyKlobuchar1_0.mp4 487 1005 0 1005\nAmyKlobuchar1_1.mp4 521 1046 0 1046\n"
    "AmyKlobuchar1_2.mp4 507 905 0 905\nAmyKlobuchar1_3.mp4 519 1000 0 1000\n"
    "CarolynMaloney2_0.mp4 363 564 0 564\nJamesClyburn1_0.mp4 575 808 0 808\n"
    "JamesClyburn_0.mp4 426 452 1 452\nMazieHirono1_0.mp4 83 1134 0 1134\n"
    "WhipJimClyburn_0.mp4 583 791 0 791",
    "crop_ratio": "AmyKlobuchar1_0.mp4 1.0\nAmyKlobuchar1_1.mp4 1.2\nAmyKlobuchar1_2.mp4 1.0\n"
    "AmyKlobuchar1_3.mp4 1.2\nCarolynMaloney2_0.mp4 1.0\nJamesClyburn1_0.mp4 1.0\n"
    "JamesClyburn_0.mp4 1.2\nMazieHirono1_0.mp4 0.8\nWhipJimClyburn_0.mp4 1.0",
}
WRA_REAL = {
    "video_url": "KevinMcCarthy1 https://www.youtube.com/watch?v=9Pjxcu2EZY4\n"
    "AdamKinzinger2 https://www.youtube.com/watch?v=xObrQqUkBSo",
    "resolution": "AdamKinzinger2.mp4 720\nKevinMcCarthy1.mp4 0",
    "annotion_time": "AdamKinzinger2.mp4 00:40-01:20 02:00-02:40 03:30-03:50 \n"
    "KevinMcCarthy1.mp4 00:22-00:45 01:05-01:20 ",
    "crop_wh": "AdamKinzinger2_0.mp4 397 513 0 513\nAdamKinzinger2_1.mp4 416 498 12 498\n"
    "AdamKinzinger2_2.mp4 396 465 32 465\nKevinMcCarthy1_0.mp4 412 465 0 465\n"
    "KevinMcCarthy1_1.mp4 421 459 14 459",
    "crop_ratio": "AdamKinzinger2_0.mp4 1.2\nAdamKinzinger2_1.mp4 1.2\nAdamKinzinger2_2.mp4 1.2\n"
    "KevinMcCarthy1_0.mp4 1.2\nKevinMcCarthy1_1.mp4 1.2",
}
RD_REAL = {
    "video_url": "Radio2 https://www.youtube.com/watch?v=uBWJJvynXpA&t=6s\n"
    "Radio6 https://www.youtube.com/watch?v=Va0qWOj25zg\n"
    "Radio11 https://www.youtube.com/watch?v=XtySvTwIOfw\n"
    "Radio24 https://www.youtube.com/watch?v=cU0JPT3n9B4",
    "resolution": "Radio11.mp4 720\nRadio2.mp4 720\nRadio24.mp4 720\nRadio6.mp4 720",
    "annotion_time": "Radio11.mp4 00:30-01:00 01:30-02:30\nRadio2.mp4 00:22-01:45\n"
    "Radio6.mp4 00:25-02:00",
    "crop_wh": "Radio11_0.mp4 412 599 0 599\nRadio11_1.mp4 557 478 0 478\n"
    "Radio2_0.mp4 473 468 0 468",
    "crop_ratio": "Radio11_0.mp4 1.2\nRadio11_1.mp4 1.2\nRadio2_0.mp4 1.2",
}


def serve_annotations(server: FixtureServer, subsets: dict[str, dict[str, str]]) -> None:
    for subset, files in subsets.items():
        for kind, text in files.items():
            path = server.root / "hdtf" / f"{subset}_{kind}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))


def context(tmp_path: Path, server: FixtureServer, **options: object) -> AcquireContext:
    return AcquireContext(
        name="hdtf",
        raw_root=tmp_path / "raw" / "hdtf",
        data_root=tmp_path / "data" / "hdtf",
        mirrors={
            "annotations": f"{server.url}/hdtf",
            "youtube": f"{server.url}/youtube/{{video_id}}.mp4",
        },
        progress=False,
        backoff_s=0.01,
        retries=1,
        jobs=2,
        **options,
    )


# --- 1. annotation parsers on the real formats -----------------------------------------------


def test_parsers_read_the_real_formats_including_the_bom() -> None:
    urls = parse_video_urls(WDA_REAL["video_url"])
    assert next(iter(urls)) == "CarolynMaloney2"  # not "\ufeffCarolynMaloney2"
    assert len(urls) == 7 and all(not k.startswith(BOM) for k in urls)
    assert parse_video_urls("Radio1 https://x\r\nRadio2 https://y\r\n") == {
        "Radio1": "https://x",
        "Radio2": "https://y",
    }
    assert youtube_id(urls["JamesClyburn1"]) == "gh3YqnvNdio"  # "&t=5s" dropped
    assert youtube_id("https://youtu.be/uBWJJvynXpA?t=6") == "uBWJJvynXpA"
    assert youtube_id("https://example.org/video.mp4") is None

    assert parse_resolutions(WRA_REAL["resolution"]) == {"AdamKinzinger2": 720, "KevinMcCarthy1": 0}

    spans = parse_intervals(WRA_REAL["annotion_time"] + "\nRadio24.mp4")
    assert spans["AdamKinzinger2"] == [(40.0, 80.0), (120.0, 160.0), (210.0, 230.0)]
    assert spans["KevinMcCarthy1"] == [(22.0, 45.0), (65.0, 80.0)]
    assert spans["Radio24"] == []
    assert parse_intervals("X.mp4 1:02:03-1:02:13")["X"] == [(3723.0, 3733.0)]
    with pytest.raises(ValueError, match="line 1: bad interval '01:00-00:30'"):
        parse_intervals("Radio1.mp4 01:00-00:30")

    boxes = parse_crop_boxes(RD_REAL["crop_wh"])
    # the file's order is x w y h
    assert boxes["Radio11", 1] == CropBox(x=557, y=0, w=478, h=478)
    assert parse_crop_boxes("AdamKinzinger2_1.mp4 416 498 12 498")["AdamKinzinger2", 1] == CropBox(
        x=416, y=12, w=498, h=498
    )
    with pytest.raises(ValueError, match="crop_wh line 1"):
        parse_crop_boxes("Radio11_0.mp4 412 599 0")
    assert parse_crop_ratios(WDA_REAL["crop_ratio"])["MazieHirono1", 0] == 0.8


def test_subset_loading_resolutions_crops_and_speakers() -> None:
    wda = {v.name: v for v in load_subset("WDA", WDA_REAL)}
    assert list(wda) == sorted(wda)
    amy = wda["AmyKlobuchar1"]
    assert len(amy.intervals) == 4 and sorted(amy.crops) == [0, 1, 2, 3]
    assert wda["JimMcGovern"].crops == {} and wda["JimMcGovern"].intervals == [(5.0, 130.0)]
    rd = {v.name: v for v in load_subset("RD", RD_REAL)}
    assert rd["Radio24"].intervals == [] and rd["Radio6"].crops == {}

    # listed resolution kept when the boxes fit; otherwise the smallest frame holding them
    assert box_height(1080, amy.crops.values()) == (1080, "")
    wra = {v.name: v for v in load_subset("WRA", WRA_REAL)}
    assert box_height(0, wra["KevinMcCarthy1"].crops.values()) == (
        720,
        "resolution 0; crop read at 720p",
    )
    assert box_height(720, wda["MazieHirono1"].crops.values())[0] == 1440

    # a 1080p box on a 720p download: scaled by 2/3; a box past the frame edge is clamped
    box, clamped = scale_crop(CropBox(x=603, y=30, w=600, h=600), 1080, 1280, 720)
    assert (box, clamped) == (CropBox(x=402, y=20, w=400, h=400), False)
    box, clamped = scale_crop(CropBox(x=1000, y=0, w=400, h=400), 720, 1280, 720)
    assert (box, clamped) == (CropBox(x=880, y=0, w=400, h=400), True)

    assert speaker_of("WDA", "AmyKlobuchar1") == "AmyKlobuchar"
    assert speaker_of("WDA", "JimMcGovern") == "JimMcGovern"
    assert speaker_of("WDA", "WhipJimClyburn") == speaker_of("WDA", "JamesClyburn1")
    assert speaker_of("RD", "Radio11") == "Radio11"


# --- 2. index: duplicates, missing intervals/crops, the split table --------------------------


def test_index_presets_known_problems_and_writes_a_deterministic_split(
    tmp_path: Path, fixture_server: FixtureServer
) -> None:
    serve_annotations(fixture_server, {"RD": RD_REAL, "WDA": WDA_REAL, "WRA": WRA_REAL})
    ctx = context(tmp_path / "a", fixture_server, num_shards=3)
    run_index(HDTF(), ctx)
    index = pd.read_parquet(ctx.index_path).set_index("unit_id")
    assert len(index) == 4 + 7 + 2
    assert index.loc["WDA/WhipJimClyburn", "status"] == "skipped"
    assert index.loc["WDA/WhipJimClyburn", "reason"] == (
        "duplicate of WDA/JamesClyburn1 (same YouTube video gh3YqnvNdio and intervals)"
    )
    assert index.loc["WDA/JamesClyburn1", "status"] == "pending"
    assert index.loc["RD/Radio24", "reason"] == "no annotated interval in RD_annotion_time.txt"
    assert index.loc["RD/Radio6", "reason"] == "no crop box in RD_crop_wh.txt"
    assert index.loc["WDA/JimMcGovern", "reason"] == "no crop box in WDA_crop_wh.txt"
    # each video is one unit grouped by its name; yt-dlp gets the id only (no "&t=")
    assert index.loc["RD/Radio2", "group"] == "Radio2"
    assert index.loc["RD/Radio2", "url"] == f"{fixture_server.url}/youtube/uBWJJvynXpA.mp4"
    meta = json.loads(index.loc["WRA/KevinMcCarthy1", "meta"])
    assert (meta["resolution"], meta["box_height"]) == (0, 720)
    assert meta["youtube_url"] == "https://www.youtube.com/watch?v=9Pjxcu2EZY4"
    assert [c["crop"] for c in meta["clips"]] == ["412,0,465,465", "421,14,459,459"]
    # the annotation files are kept, BOM removed
    kept = (ctx.raw_root / "annotations" / "WDA_video_url.txt").read_text("utf-8")
    assert kept.startswith("CarolynMaloney2 ")

    split = pd.read_csv(ctx.data_root / "split.csv")
    assert len(split) == 13 and set(split["split"]) <= {"train", "val", "test"}
    assert split.groupby("speaker")["split"].nunique().max() == 1  # speaker- and video-disjoint
    assert split["video"].is_unique
    clyburn = split[split["speaker"] == "JamesClyburn"]
    assert set(clyburn["video"]) == {"JamesClyburn", "JamesClyburn1", "WhipJimClyburn"}
    # the same split whatever the shard count, and in a second, fresh run
    other = context(tmp_path / "b", fixture_server, num_shards=1)
    run_index(HDTF(), other)
    assert pd.read_csv(other.data_root / "split.csv").equals(split)
    assert dict(zip(split["speaker"], split["split"], strict=False)) == {
        s: split_of(s) for s in split["speaker"]
    }


def test_a_dead_annotation_file_is_one_failed_row_and_subsets_fetch_only_their_files(
    tmp_path: Path, fixture_server: FixtureServer
) -> None:
    serve_annotations(fixture_server, {"WRA": WRA_REAL})
    ctx = context(tmp_path / "wra", fixture_server, subsets=("WRA",))
    run_index(HDTF(), ctx)
    assert set(pd.read_parquet(ctx.index_path)["unit_id"]) == {
        "WRA/AdamKinzinger2",
        "WRA/KevinMcCarthy1",
    }
    asked = {r.path for r in fixture_server.requests}
    assert asked == {f"/hdtf/WRA_{kind}.txt" for kind in ANNOTATION_FILES}

    (fixture_server.root / "hdtf" / "WRA_crop_wh.txt").unlink()
    dead = context(tmp_path / "dead", fixture_server, subsets=("WRA",))
    run_all(HDTF(), dead)
    manifest = pd.read_parquet(dead.manifest_path)
    assert len(manifest) == 1 and manifest.loc[0, "status"] == "failed"
    assert manifest.loc[0, "reason"] == (
        f"HTTP 404 not found (dead link): {fixture_server.url}/hdtf/WRA_crop_wh.txt"
    )


PINNED_SPLITS: dict[str, str] = {
    "AdamSchiff": "train",
    "Radio11": "train",
    "JamesClyburn": "train",
    "KevinMcCarthy": "train",
    "BarbaraLee": "val",
    "AlexandriaOcasioCortez": "test",
}


def test_split_is_a_stable_80_10_10_hash_of_the_speaker() -> None:
    # pinned: the split of a speaker must never change between versions or machines
    assert {s: split_of(s) for s in PINNED_SPLITS} == PINNED_SPLITS
    counts = pd.Series([split_of(f"speaker{i}") for i in range(4000)]).value_counts(normalize=True)
    assert counts["train"] == pytest.approx(0.8, abs=0.03)
    assert counts["val"] == pytest.approx(0.1, abs=0.02)
    assert counts["test"] == pytest.approx(0.1, abs=0.02)


# --- 3. end to end: sections, crops, audio, dead video, missing crop -------------------------

LIVE_RD, LIVE_WDA, DEAD_WRA = "y-JQqnqmEgg", "wMypCqkYKS8", "Xb0ZkpnT3wQ"
RUN_FILES = {
    "RD": {
        "video_url": f"Radio3 https://www.youtube.com/watch?v={LIVE_RD}\n"
        "Radio24 https://www.youtube.com/watch?v=cU0JPT3n9B4",
        "resolution": "Radio24.mp4 180\nRadio3.mp4 180",
        "annotion_time": "Radio3.mp4 00:00-00:01 00:01-00:02 00:02-00:03",
        # Radio3_1 has no crop entry: sections 1 and 2 are intervals 0 and 2
        "crop_wh": "Radio3_0.mp4 100 120 30 120\nRadio3_2.mp4 60 100 40 100",
        "crop_ratio": "Radio3_0.mp4 1.2\nRadio3_2.mp4 1.0",
    },
    "WDA": {
        "video_url": f"{BOM}AdamSchiff https://www.youtube.com/watch?v={LIVE_WDA}&t=8s",
        # boxes listed at 360p; the served video is 320x180, so the crop is halved
        "resolution": "AdamSchiff.mp4 360",
        "annotion_time": "AdamSchiff.mp4 00:01-00:02 ",
        "crop_wh": "AdamSchiff_0.mp4 200 240 60 240",
        "crop_ratio": "AdamSchiff_0.mp4 1.2",
    },
    "WRA": {
        "video_url": f"TomCotton0 https://www.youtube.com/watch?v={DEAD_WRA}",
        "resolution": "TomCotton0.mp4 720",
        "annotion_time": "TomCotton0.mp4 00:00-00:01 00:02-00:03",
        "crop_wh": "TomCotton0_0.mp4 400 300 0 300\nTomCotton0_1.mp4 400 300 0 300",
        "crop_ratio": "TomCotton0_0.mp4 1.2\nTomCotton0_1.mp4 1.2",
    },
}


def _frame(path: Path, index: int) -> np.ndarray:
    reader = decord.VideoReader(str(path), num_threads=1)
    return reader[index].asnumpy().astype(np.float32)


def test_run_cuts_cropped_512_clips_with_audio_and_reports_dead_and_uncropped(
    tmp_path: Path, fixture_server: FixtureServer, media_kit: MediaKit
) -> None:
    serve_annotations(fixture_server, RUN_FILES)
    for video_id in (LIVE_RD, LIVE_WDA):
        media_kit.video(
            fixture_server.root / "youtube" / f"{video_id}.mp4", seconds=3.5, size=(320, 180)
        )
    ctx = context(tmp_path, fixture_server, num_shards=2)
    run_all(HDTF(), ctx)
    manifest = pd.read_parquet(ctx.manifest_path).set_index("clip_id")
    assert set(manifest.index) == {
        "RD_Radio3_0",
        "RD_Radio3_1",
        "RD_Radio3_2",
        "RD_Radio24",
        "WDA_AdamSchiff_0",
        "WRA_TomCotton0_0",
        "WRA_TomCotton0_1",
    }
    split = pd.read_csv(ctx.data_root / "split.csv").set_index("video")["split"]

    expected = {  # clip: video, k, annotated box, box in the 320x180 download, start, id
        "RD_Radio3_0": ("Radio3", 0, "100,30,120,120", "100,30,120,120", 0, LIVE_RD),
        "RD_Radio3_2": ("Radio3", 2, "60,40,100,100", "60,40,100,100", 2, LIVE_RD),
        "WDA_AdamSchiff_0": ("AdamSchiff", 0, "200,60,240,240", "100,30,120,120", 1, LIVE_WDA),
    }
    for clip_id, (video, k, box, applied, start, video_id) in expected.items():
        row = manifest.loc[clip_id]
        assert row["status"] == "ok", row["reason"]
        assert (row["width"], row["height"]) == (512, 512)
        assert row["duration_s"] == pytest.approx(1.0, abs=1 / 25 + 1e-6)
        assert row["num_frames"] in (24, 25, 26)
        assert (row["interval"], row["start_s"], row["end_s"]) == (k, start, start + 1)
        assert (row["crop_box"], row["applied_crop"], row["download_height"]) == (box, applied, 180)
        assert row["source"] == f"https://www.youtube.com/watch?v={video_id}"
        assert row["video"] == video and row["speaker"] == video
        assert row["split"] == split[video] and row["known_issue"] == ""
        path = ctx.data_root / row["path"]
        assert row["path"] == f"clips/{row['subset']}/{video}_{k}.mp4" and path.is_file()
        probed = probe_video(path)
        assert (probed["width"], probed["height"], probed["has_audio"]) == (512, 512, True)
        assert row["audio_rate"] == probed["audio_rate"] and row["sha256"]

        # the pixels are the box at the right time: frame 12 of the clip matches the applied
        # crop of source frame 25 * start + 12 far better than the box moved 100 px sideways
        x, y, w, h = (int(v) for v in applied.split(","))
        frame = _frame(path, 12).astype(np.uint8)
        clip = np.asarray(Image.fromarray(frame).resize((w, h), Image.BILINEAR), np.float32)
        source = _frame(fixture_server.root / "youtube" / f"{video_id}.mp4", 25 * start + 12)
        moved = x + 100 if x + 100 + w <= 320 else x - 100
        right = np.abs(clip - source[y : y + h, x : x + w]).mean()
        wrong = np.abs(clip - source[y : y + h, moved : moved + w]).mean()
        assert right < 8 and right < wrong / 4, (clip_id, right, wrong)

    # only the annotated intervals with a crop box were fetched, one section file each
    sections = sorted(p.name for p in (ctx.raw_root / "youtube").rglob("*.mp4"))
    assert sections == ["AdamSchiff.1.mp4", "Radio3.1.mp4", "Radio3.2.mp4"]
    for section in (ctx.raw_root / "youtube").rglob("*.mp4"):
        assert probe_video(section)["duration_s"] < 1.5  # the interval, not the 3.5 s video

    skipped = manifest.loc["RD_Radio3_1"]
    assert (skipped["status"], skipped["reason"]) == ("skipped", "no crop box in RD_crop_wh.txt")
    assert pd.isna(skipped["path"]) and skipped["crop_box"] == ""
    no_interval = manifest.loc["RD_Radio24"]
    assert no_interval["status"] == "skipped"
    assert no_interval["reason"] == "no annotated interval in RD_annotion_time.txt"

    for clip_id in ("WRA_TomCotton0_0", "WRA_TomCotton0_1"):
        row = manifest.loc[clip_id]
        assert row["status"] == "failed"
        assert row["reason"].startswith("yt-dlp: ") and "HTTP Error 404" in row["reason"]
        assert row["speaker"] == "TomCotton" and not (ctx.data_root / row["path"]).exists()
    dead = fixture_server.requests_for(f"/youtube/{DEAD_WRA}.mp4")
    assert dead and {r.status for r in dead} == {404}

    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    assert (stats["utterances"], stats["speakers"], stats["videos"]) == (3, 2, 2)
    assert stats["hours"] == pytest.approx(3 / 3600, rel=0.05)
    assert (stats["head_movement"], stats["source"]) == ("Yes", "Wild")

    # a second run fetches nothing from the live videos: a lost clip is cut again from its kept
    # section, the others are left alone
    (ctx.data_root / "clips" / "RD" / "Radio3_0.mp4").unlink()
    seen = {v: len(fixture_server.requests_for(f"/youtube/{v}.mp4")) for v in (LIVE_RD, LIVE_WDA)}
    run_all(HDTF(), ctx)
    assert seen == {
        v: len(fixture_server.requests_for(f"/youtube/{v}.mp4")) for v in (LIVE_RD, LIVE_WDA)
    }
    again = pd.read_parquet(ctx.manifest_path).set_index("clip_id")
    assert again["status"].equals(manifest["status"])
    assert again.loc["WDA_AdamSchiff_0", "sha256"] == manifest.loc["WDA_AdamSchiff_0", "sha256"]
    assert again.loc["RD_Radio3_0", ["width", "height"]].tolist() == [512, 512]
