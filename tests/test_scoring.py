"""The scorer's per-video and no-reference metrics, scoring protocols, and the weights CLI."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from talking_heads import weights
from talking_heads.cli import main
from talking_heads.metrics import METRICS, Metric, VideoMetric
from talking_heads.metrics.protocols import load_scoring, score_protocol
from talking_heads.metrics.score import ScoreInputError, score
from talking_heads.preprocess.audio import write_wav
from talking_heads.utils.media import write_frames_dir, write_image


class OddFramesUnscorable(Metric):
    """Mean brightness of the generated frame; NaN on odd frame indices (no face, say)."""

    name: ClassVar[str] = "odd_unscorable"
    needs_reference: ClassVar[bool] = False

    def __call__(self, generated, reference, **inputs: Any):
        values = generated.mean(dim=(1, 2, 3))
        return torch.where(inputs["frame_index"] % 2 == 1, torch.nan, values)


class VideoStats(VideoMetric):
    """Per video: frame count, audio length in samples and the source's mean brightness."""

    name: ClassVar[str] = "video_stats"
    outputs: ClassVar[tuple[str, ...]] = ("frames", "audio_samples", "source_mean")
    needs_reference: ClassVar[bool] = False
    inputs: ClassVar[frozenset[str]] = frozenset({"audio_path", "source"})

    def compute_video(self, generated, reference, **inputs: Any) -> dict[str, float]:
        from talking_heads.preprocess.audio import read_wav

        samples, _ = read_wav(inputs["audio_path"])
        if len(generated) < 4:  # too short to score: NaN, counted by the scorer
            return {k: math.nan for k in self.outputs}
        return {
            "frames": float(len(generated)),
            "audio_samples": float(len(samples)),
            "source_mean": float(inputs["source"].mean()),
        }


class SourceBrightness(Metric):
    """Mean brightness of the source each generated frame is compared with."""

    name: ClassVar[str] = "source_brightness"
    needs_reference: ClassVar[bool] = False
    inputs: ClassVar[frozenset[str]] = frozenset({"source"})

    def __call__(self, generated, reference, **inputs: Any):
        return inputs["source"].mean(dim=(1, 2, 3)).expand(len(generated))


class NeedsVgg(Metric):
    """A metric whose constructor resolves pretrained weights (VGG19)."""

    name: ClassVar[str] = "needs_vgg"

    def __init__(self) -> None:
        weights.resolve("vgg19")

    def __call__(self, generated, reference, **inputs: Any):
        return torch.zeros(len(generated))


@pytest.fixture
def test_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (OddFramesUnscorable, VideoStats, SourceBrightness, NeedsVgg):
        monkeypatch.setitem(METRICS._entries, cls.name, cls)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two frame-directory videos (5 and 3 frames), references, speech and source stills."""
    root = tmp_path_factory.mktemp("scoring")
    rng = np.random.default_rng(1)
    frames = {"a": rng.integers(0, 256, (5, 32, 24, 3)), "b": rng.integers(0, 256, (3, 32, 24, 3))}
    for stem, video in frames.items():
        write_frames_dir(root / "generated" / stem, video.astype(np.uint8))
        write_frames_dir(root / "reference" / stem, (255 - video).astype(np.uint8))
        write_wav(root / "audio" / f"{stem}.wav", np.zeros(1600 * len(video), np.float32))
        still = np.full((32, 24, 3), 40 if stem == "a" else 200, np.uint8)
        write_image(root / "source" / f"{stem}.png", still)
    return {"root": root, "frames": frames}


def test_nan_frames_are_skipped_and_counted(clips, test_metrics) -> None:
    root = clips["root"]
    result = score(["odd_unscorable"], root / "generated", progress=False)
    a, b = (clips["frames"][s].astype(np.float64) / 255 for s in ("a", "b"))
    kept = [a[0].mean(), a[2].mean(), a[4].mean(), b[0].mean(), b[2].mean()]
    assert result["summary"]["odd_unscorable"] == pytest.approx(np.mean(kept), rel=1e-12)
    assert result["per_video"]["b"]["odd_unscorable"] == pytest.approx(np.mean(kept[3:]))
    assert result["metrics"]["odd_unscorable"]["skipped_frames"] == 3
    assert result["inputs"]["reference"] is None


def test_video_metric_gets_audio_source_and_whole_video(clips, test_metrics) -> None:
    root = clips["root"]
    result = score(
        ["video_stats"],
        root / "generated",
        audio=root / "audio",
        source=root / "source",
        progress=False,
    )
    a = result["per_video"]["a"]
    assert (a["frames"], a["audio_samples"]) == (5.0, 8000.0)
    assert a["source_mean"] == pytest.approx(40 / 255)
    assert math.isnan(result["per_video"]["b"]["frames"])  # 3 frames: too short
    assert result["summary"]["frames"] == 5.0  # mean over the videos that could be scored
    assert result["metrics"]["video_stats"]["skipped_videos"] == {
        "frames": 1,
        "audio_samples": 1,
        "source_mean": 1,
    }


def test_source_defaults_to_the_first_reference_frame(clips, test_metrics) -> None:
    root = clips["root"]
    result = score(
        ["video_stats"],
        root / "generated",
        root / "reference",
        audio=root / "audio",
        progress=False,
    )
    first = 255 - clips["frames"]["a"][0].astype(np.float64)
    assert result["per_video"]["a"]["source_mean"] == pytest.approx(first.mean() / 255)
    assert result["inputs"]["source"] == "first reference frame"


def test_per_frame_sources_for_a_single_video(clips, test_metrics, tmp_path: Path) -> None:
    sources = np.stack([np.full((8, 8, 3), 10 * (i + 1), np.uint8) for i in range(6)])
    write_frames_dir(tmp_path / "source", sources)
    result = score(
        ["source_brightness"],
        clips["root"] / "generated" / "a",
        source=tmp_path / "source",
        batch_size=2,
        stride=2,
        progress=False,
    )
    # frames 0, 2, 4 of the video are paired with source frames 0, 2, 4
    assert result["summary"]["source_brightness"] == pytest.approx((10 + 30 + 50) / 3 / 255)
    with pytest.raises(ScoreInputError, match="2 source frames for 5 generated frames"):
        score(
            ["source_brightness"],
            clips["root"] / "generated" / "a",
            source=_two_frames(tmp_path),
            progress=False,
        )


def _two_frames(tmp_path: Path) -> Path:
    return write_frames_dir(tmp_path / "two", np.zeros((2, 8, 8, 3), np.uint8))


def test_missing_inputs_are_clear_errors(clips, test_metrics, tmp_path: Path) -> None:
    root = clips["root"]
    with pytest.raises(ValueError, match=r"needs input\(s\) \['audio_path'\] \(give audio"):
        score(["video_stats"], root / "generated", source=root / "source", progress=False)
    with pytest.raises(ValueError, match="compares against references"):
        score(["psnr"], root / "generated", progress=False)
    (tmp_path / "audio").mkdir()
    write_wav(tmp_path / "audio" / "a.wav", np.zeros(800, np.float32))
    with pytest.raises(ScoreInputError, match=r"no audio for 'b' in .*looked for b\{\.wav"):
        score(
            ["video_stats"],
            root / "generated",
            audio=tmp_path / "audio",
            source=root / "source",
            progress=False,
        )


def test_frame_selection_size_and_aggregation(clips) -> None:
    root = clips["root"]
    frame_mean = score(
        ["l1"], root / "generated", root / "reference", stride=2, size=16, progress=False
    )
    assert {s: v["num_frames"] for s, v in frame_mean["per_video"].items()} == {"a": 3, "b": 2}
    assert frame_mean["inputs"]["size"] == [16, 16]
    assert frame_mean["inputs"]["resized_generated"]["a"]["to"] == [16, 16]
    video_mean = score(
        ["l1"],
        root / "generated",
        root / "reference",
        stride=2,
        size=16,
        aggregation="videos",
        progress=False,
    )
    per_video = [frame_mean["per_video"][s]["l1"] for s in ("a", "b")]
    assert video_mean["summary"]["l1"] == pytest.approx(np.mean(per_video), rel=1e-12)
    weighted = (3 * per_video[0] + 2 * per_video[1]) / 5
    assert frame_mean["summary"]["l1"] == pytest.approx(weighted, rel=1e-12)


def _scoring_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    configs = tmp_path / "configs"
    (configs / "scoring").mkdir(parents=True)
    (configs / "scoring" / "trial.yaml").write_text(body)
    monkeypatch.setenv("TALKING_HEADS_CONFIG_DIR", str(configs))


def test_scoring_protocol_falls_back_to_the_offline_variant(
    clips, test_metrics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "no-weights"))
    _scoring_config(
        tmp_path,
        monkeypatch,
        (
            "name: trial\nlabel: trial protocol\ntable: null\nsize: 16\naggregation: videos\n"
            "metrics:\n  l1: [l1]\n  brightness: [needs_vgg, odd_unscorable]\n"
            "  stats: [video_stats]\n"
        ),
    )
    root = clips["root"]
    result = score_protocol(
        load_scoring("trial"), root / "generated", root / "reference", progress=False
    )
    quantities = result["scoring"]["quantities"]
    assert quantities["brightness"]["metric"] == "odd_unscorable"
    assert "vgg19-dcbb9e9d.pth" in quantities["brightness"]["passed_over"]["needs_vgg"]
    assert quantities["stats"]["metric"] is None
    assert quantities["stats"]["passed_over"]["video_stats"] == "not computed: needs audio"
    assert set(result["summary"]) == {"l1", "odd_unscorable"}
    assert result["inputs"]["size"] == [16, 16]
    assert result["scoring"]["aggregation"] == "videos"


def test_scoring_protocol_rejects_unknown_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scoring_config(
        tmp_path,
        monkeypatch,
        "name: trial\nlabel: x\ntable: null\nmetrics:\n  l1: [l1, no_such_metric]\n",
    )
    with pytest.raises(ValueError, match="l1: unknown metric 'no_such_metric'"):
        load_scoring("trial")


def test_shipped_scoring_protocols_name_registered_metrics() -> None:
    table2 = load_scoring("table2")
    assert table2.size == 256 and table2.table == "table2"
    assert list(table2.metrics)[:4] == ["l1", "lpips", "psnr", "ssim"]
    survey = load_scoring("survey_metrics")
    assert len(survey.metrics) == 14  # LSE gives LSE-D and LSE-C: fifteen survey metrics
    assert survey.metrics["csim"] == ["csim", "csim_dlib"]


def test_weights_list_and_fetch(
    fixture_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    payload = b"pretend weights " * 1000
    (fixture_server.root / "w.pth").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    spec = weights.WeightsSpec(
        "trial", "w-1234.pth", f"{fixture_server.url}/w.pth", digest, "a test", len(payload)
    )
    bad = weights.WeightsSpec(
        "trial_bad", "bad.pth", f"{fixture_server.url}/w.pth", "0" * 64, "a test"
    )
    monkeypatch.setitem(weights.WEIGHTS._entries, "trial", spec)
    monkeypatch.setitem(weights.WEIGHTS._entries, "trial_bad", bad)
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "w"))
    main(["weights", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["trial"]["present"] is False and rows["trial"]["sha256"] == digest
    assert rows["hopenet"]["sha256"] is None
    main(["weights", "fetch", "trial"])
    assert capsys.readouterr().out.startswith(f"trial: {tmp_path / 'w' / 'w-1234.pth'}")
    assert (tmp_path / "w" / "w-1234.pth").read_bytes() == payload
    main(["weights", "list", "--verify", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["trial"]["present"] and rows["trial"]["verified"] is True
    with pytest.raises(SystemExit, match="could not fetch: trial_bad"):
        main(["weights", "fetch", "trial_bad"])
    assert "does not match" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["w-1234.pth"]
    with pytest.raises(SystemExit, match="could not fetch: hopenet"):
        main(["weights", "fetch", "hopenet"])
    assert "cannot be fetched by a script" in capsys.readouterr().err
