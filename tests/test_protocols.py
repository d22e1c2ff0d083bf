"""Evaluation protocols: named configs, pair lists (DaGAN's CSV or drawn), runs and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from talking_heads.inference.protocols import (
    applies_to,
    draw_pairs,
    load_protocol,
    protocol_names,
    read_pairs_csv,
    run_pairs,
    run_protocol,
    run_reconstruction,
)
from talking_heads.manifest import write_manifest
from talking_heads.utils.media import read_frames, read_image, read_video, write_video

CLIPS = pd.DataFrame(
    {
        "clip_id": [
            "fomm/test/id10282#Zbz058o9j6s#004557#004656",
            "fomm/test/id10283#u3s9xdUlmmk#005241#006005",
            "fomm/test/short",
        ],
        "num_frames": [100, 300, 1],
    }
)


class CopyDriving:
    """A generator stand-in whose output is the driving frames themselves; it records the
    options each call was given."""

    resolution = 32

    def __init__(self) -> None:
        self.options: list[dict] = []

    def synthesize(self, inputs, options, **_: object) -> torch.Tensor:
        self.options.append(dict(options))
        assert inputs.source is not None and inputs.source.dim() == 3
        return inputs.driving.clone()

    def reconstruct_clip(self, inputs, options, **_: object) -> torch.Tensor:
        self.options.append(dict(options))
        return inputs.driving.clone()


def test_named_protocols_hold_the_reference_settings() -> None:
    assert {"fomm_reconstruction", "pairs_same_id"} <= set(protocol_names())
    reconstruction = load_protocol("fomm_reconstruction")
    assert reconstruction.kind == "reconstruction"
    assert reconstruction.options == {"relative": False, "adapt_scale": False}
    assert reconstruction.split == "test" and reconstruction.families == ["motion-transfer"]
    pairs = load_protocol("pairs_same_id", num_pairs=7, pairs_csv=None)
    assert (pairs.num_clips, pairs.num_pairs) == (100, 7)
    assert pairs.options["relative"] is False
    assert load_protocol("pairs_same_id").num_pairs == 2083
    with pytest.raises(
        ValueError,
        match=r"unknown protocol .no_such_protocol.; known: fomm_reconstruction, lipsync_pairs, "
        r"pairs_same_id",
    ):
        load_protocol("no_such_protocol")


def test_drawn_pairs_are_deterministic_same_clip_and_distinct_frames() -> None:
    protocol = load_protocol("pairs_same_id", num_clips=2, num_pairs=50, seed=3)
    pairs = draw_pairs(CLIPS, protocol)
    assert len(pairs) == 50 and pairs["pair"].is_unique
    pd.testing.assert_frame_equal(pairs, draw_pairs(CLIPS, protocol))
    assert not pairs.equals(draw_pairs(CLIPS, load_protocol("pairs_same_id", num_pairs=50)))
    # the one-frame clip cannot give a pair; both others are used
    assert set(pairs["clip_id"]) == set(CLIPS["clip_id"][:2])
    lengths = dict(zip(CLIPS["clip_id"], CLIPS["num_frames"], strict=True))
    assert (pairs["source_frame"] != pairs["driving_frame"]).all()
    assert all(
        0 <= max(row.source_frame, row.driving_frame) < lengths[row.clip_id]
        for row in pairs.itertuples()
    )


def test_dagan_pair_csv_is_matched_to_our_clips_and_bad_rows_are_kept_with_reasons(
    tmp_path: Path,
) -> None:
    root = "/data/vox1_frames/test"
    csv = tmp_path / "vox_evaluation.csv"
    csv.write_text(
        "source,driving,frame\n"
        f"{root}/id10282#Zbz058o9j6s#004557#004656.mp4/0000013.png,"
        f"{root}/id10282#Zbz058o9j6s#004557#004656.mp4/0000048.png\n"
        f"{root}/id10999#missing#000001#000100.mp4/0000001.png,"
        f"{root}/id10999#missing#000001#000100.mp4/0000002.png\n"
        f"{root}/id10283#u3s9xdUlmmk#005241#006005.mp4/0000259.png,"
        f"{root}/id10283#u3s9xdUlmmk#005241#006005.mp4/0000400.png\n"
    )
    pairs = read_pairs_csv(csv, CLIPS)
    assert pairs.loc[0, ["clip_id", "source_frame", "driving_frame", "status"]].tolist() == [
        "fomm/test/id10282#Zbz058o9j6s#004557#004656",
        13,
        48,
        "",
    ]
    assert pairs.loc[1, "status"] == "skipped" and "not among" in pairs.loc[1, "reason"]
    assert pairs.loc[2, "status"] == "skipped" and "300 frames" in pairs.loc[2, "reason"]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="source,driving"):
        read_pairs_csv(bad, CLIPS)


@pytest.fixture
def shard(tmp_path: Path) -> Path:
    """A preprocessed shard with two 32² test clips and one train clip."""
    rng = np.random.default_rng(0)
    shard = tmp_path / "shard-000"
    rows = []
    for clip_id, split, frames in (("a", "test", 6), ("b", "test", 4), ("c", "train", 5)):
        video = rng.integers(0, 256, size=(frames, 32, 32, 3), dtype=np.uint8)
        write_video(shard / "clips" / f"{clip_id}.mp4", video, 25.0, crf=0)
        rows.append(
            {
                "clip_id": clip_id,
                "kind": "video",
                "split": split,
                "status": "ok",
                "path": f"clips/{clip_id}.mp4",
                "num_frames": frames,
            }
        )
    write_manifest(pd.DataFrame(rows), shard / "manifest.parquet")
    return shard


def test_pairs_run_writes_generated_reference_and_source_frames(shard: Path, tmp_path: Path):
    protocol = load_protocol("pairs_same_id", num_clips=5, num_pairs=9)
    out = tmp_path / "pairs"
    generator = CopyDriving()
    summary = run_pairs(generator, protocol, [shard], out)
    # the protocol's absolute motion reaches the method as its declared options
    assert all(o["relative"] is False and o["adapt_scale"] is False for o in generator.options)
    assert json.loads((out / "score_inputs.json").read_text()) == {
        "reference": [str(out / "reference")],
        "source": str(out / "source"),
    }
    pairs = pd.read_csv(out / "pairs.csv", dtype={"pair": str})
    assert len(pairs) == 9 and (pairs["status"] == "ok").all()
    assert set(pairs["clip_id"]) <= {"a", "b"}  # the train clip is not evaluated
    assert summary["frames"] == 9 and summary["protocol"] == "pairs_same_id"
    assert json.loads((out / "summary.json").read_text())["settings"]["num_pairs"] == 9
    for row in pairs.itertuples():
        clip = read_video(shard / "clips" / f"{row.clip_id}.mp4")[0]
        reference = read_image(out / "reference" / f"{row.pair}.png")
        np.testing.assert_array_equal(reference, clip[row.driving_frame])
        np.testing.assert_array_equal(
            read_image(out / "source" / f"{row.pair}.png"), clip[row.source_frame]
        )
        np.testing.assert_array_equal(read_image(out / "generated" / f"{row.pair}.png"), reference)


def test_reconstruction_run_regenerates_every_test_clip(shard: Path, tmp_path: Path) -> None:
    out = tmp_path / "reconstruction"
    summary = run_reconstruction(CopyDriving(), load_protocol("fomm_reconstruction"), [shard], out)
    assert [r["clip_id"] for r in summary["records"]] == ["a", "b"]
    assert summary["frames"] == 10
    for clip_id, frames in (("a", 6), ("b", 4)):
        generated = read_frames(out / "generated" / f"{clip_id}.mp4")
        original = read_frames(shard / "clips" / f"{clip_id}.mp4")
        assert generated.shape == (frames, 32, 32, 3)
        # lossless H.264 in yuv444p: only the RGB <-> YUV rounding (one grey level) remains
        assert np.abs(generated.astype(int) - original.astype(int)).max() <= 1
    assert json.loads((out / "score_inputs.json").read_text()) == {
        "reference": [str(shard / "clips")],
        "audio": [],  # the shard has no speech
    }


def test_score_reads_what_to_score_from_the_protocol_run(shard: Path, tmp_path: Path) -> None:
    from talking_heads.cli import main

    out = tmp_path / "reconstruction"
    run_reconstruction(CopyDriving(), load_protocol("fomm_reconstruction"), [shard], out)
    scores = tmp_path / "scores.json"
    argv = ["score", "--inputs-from", str(out), "--metrics", "l1,psnr", "--device", "cpu"]
    assert main([*argv, "--out", str(scores)]) == 0
    result = json.loads(scores.read_text())
    # the copies are the shard's clips up to the lossless codec's one grey level
    pairs = result["inputs"]["pairs"]
    assert {stem: Path(p["reference"]).parent for stem, p in pairs.items()} == {
        "a": shard / "clips",
        "b": shard / "clips",
    }
    assert result["inputs"]["generated"] == str(out / "generated")
    assert 0 < result["summary"]["l1"] <= 1 / 255
    assert result["summary"]["psnr"] > 48
    with pytest.raises(FileNotFoundError, match=r"no score_inputs\.json"):
        from talking_heads.inference.protocols import read_score_inputs

        read_score_inputs(shard)


def test_protocol_refuses_a_method_of_another_family(tmp_path: Path) -> None:
    from talking_heads.models import METHODS
    from talking_heads.models.interface import InputError

    protocol = load_protocol("pairs_same_id", families=["lip-sync"])
    assert not applies_to(protocol, METHODS.get("fomm").family)
    with pytest.raises(InputError, match="applies to lip-sync methods; fomm is motion-transfer"):
        run_protocol("fomm", tmp_path / "x.ckpt", protocol, [], tmp_path / "out")


def test_protocol_settings_are_typed() -> None:
    from talking_heads.config import ConfigError

    with pytest.raises(ConfigError, match="num_pairs: expected an integer, got 'many'"):
        load_protocol("pairs_same_id", num_pairs="many")
    with pytest.raises(ConfigError, match="kind: 'both' is not one of 'reconstruction', 'pairs'"):
        load_protocol("pairs_same_id", kind="both")
