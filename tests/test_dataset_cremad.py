"""CREMA-D acquisition: LFS pointers from a "raw" base, media from a "media" base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataset_media import sha256_of, truncate
from talking_heads.datasets.base import AcquireContext, run_all
from talking_heads.datasets.cremad import (
    CremaD,
    parse_lfs_pointer,
    parse_name,
    read_sentence_filenames,
    speaker_split,
)
from talking_heads.manifest import read_manifest

NAMES = [
    "1001_DFA_ANG_XX",  # fine
    "1001_IEO_HAP_LO",  # fine
    "1076_MTI_NEU_XX",  # known defect (short, no audio)
    "1002_DFA_SAD_XX",  # served bytes differ from the pointer's sha256
    "1003_ITS_FEA_XX",  # LFS object missing on the media host (404)
    "1004_TIE_DIS_XX",  # the stored FLV itself is truncated
    "1001_XYZ_ANG_XX",  # not a CREMA-D name
]


def _pointer(data: bytes) -> str:
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {len(data)}\n"


@pytest.fixture(scope="module")
def media(media_kit, tmp_path_factory) -> dict[str, bytes]:
    work = tmp_path_factory.mktemp("cremad-media")
    flv = media_kit.video(work / "clip.flv", seconds=0.6, fps=30, size=(64, 48))
    silent = media_kit.video(work / "silent.flv", seconds=0.2, fps=30, size=(64, 48), audio=False)
    broken = truncate(media_kit.video(work / "broken.flv", seconds=1.0, fps=30, size=(64, 48)))
    wav = media_kit.audio(work / "clip.wav", seconds=0.6, rate=16000)
    return {
        "flv": flv.read_bytes(),
        "silent": silent.read_bytes(),
        "broken": broken.read_bytes(),
        "wav": wav.read_bytes(),
    }


def _build(www: Path, media: dict[str, bytes]) -> None:
    """The repository as the two hosts serve it: pointers under raw/, objects under media/."""
    rows = "\n".join(f'{i},"{name}"' for i, name in enumerate(NAMES, 1))
    (www / "raw").mkdir()
    (www / "raw" / "SentenceFilenames.csv").write_text(f'"Stimulus_Number","Filename"\n{rows}\n')
    for name in NAMES:
        video = {"1076_MTI_NEU_XX": media["silent"], "1004_TIE_DIS_XX": media["broken"]}
        files = {
            f"VideoFlash/{name}.flv": video.get(name, media["flv"]),
            f"AudioWAV/{name}.wav": media["wav"],
        }
        for rel, data in files.items():
            pointer = www / "raw" / rel
            pointer.parent.mkdir(parents=True, exist_ok=True)
            pointer.write_text(_pointer(data))
            if rel == "VideoFlash/1003_ITS_FEA_XX.flv":
                continue  # the LFS object is missing
            if rel == "VideoFlash/1002_DFA_SAD_XX.flv":
                data = bytes(b ^ 0xFF for b in data)  # same size, different bytes
            target = www / "media" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def _context(tmp_path: Path, server, **options) -> AcquireContext:
    return AcquireContext(
        name="cremad",
        raw_root=tmp_path / "raw" / "cremad",
        data_root=tmp_path / "data" / "cremad",
        mirrors={"raw": server.url + "/raw", "media": server.url + "/media"},
        jobs=2,
        progress=False,
        retries=1,
        backoff_s=0.01,
        **options,
    )


def test_parse_name_and_pointer() -> None:
    assert parse_name("1091_IEO_HAP_HI") == {
        "actor": "1091",
        "sentence": "IEO",
        "emotion": "HAP",
        "level": "HI",
    }
    for bad, why in [
        ("1000_IEO_HAP_HI", "actor '1000'"),
        ("1001_XYZ_HAP_HI", "unknown sentence 'XYZ'"),
        ("1001_IEO_JOY_HI", "unknown emotion 'JOY'"),
        ("1001_IEO_HAP_ZZ", "unknown level 'ZZ'"),
        ("1001_IEO_HAP", "not ActorID_Sentence_Emotion_Level"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_name(bad)
    text = _pointer(b"abc")
    assert parse_lfs_pointer(text) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        3,
    )
    with pytest.raises(ValueError):
        parse_lfs_pointer("FLV\x01binary")
    csv = '\ufeff"Stimulus_Number","Filename"\n1,"1001_IEO_NEU_XX"\n2,"1001_IEO_NEU_XX"\n'
    assert read_sentence_filenames(csv.lstrip("\ufeff")) == ["1001_IEO_NEU_XX"]


def test_speaker_split_is_disjoint_deterministic_70_10_20() -> None:
    splits = [speaker_split(str(a)) for a in range(1001, 1092)]
    assert (splits.count("train"), splits.count("validation"), splits.count("test")) == (63, 9, 19)
    assert speaker_split("1001") == speaker_split("1001")
    with pytest.raises(KeyError):
        speaker_split("0999")


def test_pointer_driven_download_with_every_failure(tmp_path, fixture_server, media):
    _build(fixture_server.root, media)
    ctx = _context(tmp_path, fixture_server, num_shards=3)
    manifest = read_manifest(run_all(CremaD(), ctx))
    rows = manifest.set_index("clip_id")

    good = rows.loc["VideoFlash/1001_DFA_ANG_XX"]
    assert good["status"] == "ok", good["reason"]
    assert (good["speaker"], good["sentence"], good["emotion"], good["level"]) == (
        "1001",
        "DFA",
        "ANG",
        "XX",
    )
    assert good["kind"] == "video" and (good["width"], good["height"]) == (64, 48)
    assert good["split"] == speaker_split("1001")
    assert good["sha256"] == sha256_of(fixture_server.root / "media/VideoFlash/1001_DFA_ANG_XX.flv")
    wav = rows.loc["AudioWAV/1001_IEO_HAP_LO"]
    assert wav["status"] == "ok" and wav["kind"] == "audio" and wav["audio_rate"] == 16000

    mismatch = rows.loc["VideoFlash/1002_DFA_SAD_XX"]
    assert mismatch["status"] == "failed"
    assert mismatch["reason"].startswith("checksum mismatch: sha256 of 1002_DFA_SAD_XX.flv")
    assert not (ctx.raw_root / "VideoFlash" / "1002_DFA_SAD_XX.flv").exists()
    assert (mismatch["speaker"], mismatch["emotion"]) == ("1002", "SAD")  # failed rows keep labels

    missing = rows.loc["VideoFlash/1003_ITS_FEA_XX"]
    assert missing["status"] == "failed" and missing["reason"].startswith("HTTP 404")
    assert rows.loc["AudioWAV/1003_ITS_FEA_XX", "status"] == "ok"

    broken = rows.loc["VideoFlash/1004_TIE_DIS_XX"]
    assert broken["status"] == "failed"
    assert "truncated" in broken["reason"] or "unreadable" in broken["reason"]

    for subset in ("VideoFlash", "AudioWAV"):
        flagged = rows.loc[f"{subset}/1076_MTI_NEU_XX"]
        assert flagged["status"] == "skipped"
        assert flagged["reason"].startswith("known defect: 1076_MTI_NEU_XX is very short")
        assert "without audio" in flagged["known_issue"]

    bad_name = rows.loc["VideoFlash/1001_XYZ_ANG_XX"]
    assert bad_name["status"] == "failed"
    assert bad_name["reason"].startswith("unparseable clip name")
    assert fixture_server.requests_for("/media/VideoFlash/1001_XYZ_ANG_XX.flv") == []

    # each actor's files share one shard
    owners: dict[str, set[int]] = {}
    for shard in range(3):
        part = read_manifest(ctx.manifest_shard(shard))
        for speaker in part["speaker"].dropna():
            owners.setdefault(speaker, set()).add(shard)
    assert all(len(s) == 1 for s in owners.values())

    stats = json.loads((ctx.data_root / "statistics.json").read_text())
    # distinct clips with a usable file: 1001 x2, and 1002/1003/1004 through their wavs
    assert stats["utterances"] == 5 and stats["speakers"] == 4
    assert stats["hours_from"] == "VideoFlash"
    video_ok = manifest[(manifest["status"] == "ok") & (manifest["subset"] == "VideoFlash")]
    assert stats["hours"] == pytest.approx(video_ok["duration_s"].sum() / 3600)

    # a second run reads cached pointers and verified files: no request at all
    before = len(fixture_server.requests)
    run_all(CremaD(), ctx)
    new = fixture_server.requests[before:]
    assert {r.path for r in new} <= {
        "/raw/SentenceFilenames.csv",
        "/media/VideoFlash/1002_DFA_SAD_XX.flv",  # failed ones are tried again
        "/media/VideoFlash/1003_ITS_FEA_XX.flv",
    }


def test_mp3_subset_and_missing_pointer(tmp_path, fixture_server, media):
    _build(fixture_server.root, media)
    ctx = _context(tmp_path, fixture_server, subsets=("AudioMP3",))
    manifest = read_manifest(run_all(CremaD(), ctx))
    # the fixture repository has no AudioMP3 pointers: every unit fails at the index
    valid = manifest[~manifest["clip_id"].str.contains("XYZ")]
    assert set(valid["status"]) == {"failed"}
    assert valid["reason"].str.startswith("LFS pointer: HTTP 404").all()
    assert not any(r.path.startswith("/media/") for r in fixture_server.requests)


def test_missing_filename_list_is_one_failed_row(tmp_path, fixture_server):
    ctx = _context(tmp_path, fixture_server)
    manifest = read_manifest(run_all(CremaD(), ctx))
    assert manifest["clip_id"].tolist() == ["metadata"]
    assert manifest.iloc[0]["status"] == "failed"
    assert manifest.iloc[0]["reason"].startswith("HTTP 404 not found (dead link)")
    assert "SentenceFilenames.csv" in manifest.iloc[0]["reason"]
