"""LSE-D / LSE-C: equal to syncnet-python's evaluation on identical random weights and frames;
the AV offset follows a shift of the audio; the batched distance equals calc_pdist."""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from metric_media import carphone_frames, to_tensor
from random_weights import seeded_syncnet_state
from talking_heads import weights
from talking_heads.datasets.demo import fit_length, synthesize_speech
from talking_heads.metrics import build_metric
from talking_heads.metrics.sync import LSE, SyncNet, sync_scores
from talking_heads.preprocess.audio import write_wav
from talking_heads.preprocess.decode import constant_rate_cfr_indices

NUM_FRAMES = 30


def _loaded(state: dict[str, torch.Tensor]) -> SyncNet:
    network = SyncNet()
    network.load_state_dict(state)
    return network.eval()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """30 carphone frames at 224x224 as JPEG (what syncnet_python reads) and eSpeak speech."""
    root = tmp_path_factory.mktemp("lse")
    frames_dir = root / "frames"
    frames_dir.mkdir()
    for i, frame in enumerate(carphone_frames(NUM_FRAMES, start=20)):
        bgr = cv2.resize(frame[..., ::-1], (224, 224))
        cv2.imwrite(str(frames_dir / f"{i:06d}.jpg"), bgr)
    decoded = np.stack([cv2.imread(str(p)) for p in sorted(frames_dir.glob("*.jpg"))])
    speech = fit_length(synthesize_speech(), NUM_FRAMES * 640)
    write_wav(frames_dir / "audio.wav", speech)
    rgb = torch.from_numpy(decoded[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    return {"dir": frames_dir, "frames": rgb, "audio": frames_dir / "audio.wav"}


@pytest.mark.parity("lse")
def test_lse_equals_syncnet_python(clip) -> None:
    from syncnet_python.SyncNetInstance import SyncNetInstance
    from syncnet_python.SyncNetModel import S

    state = seeded_syncnet_state()
    reference_net = S()
    reference_net.load_state_dict(state)
    opt = types.SimpleNamespace(tmp_dir=str(clip["dir"]), batch_size=20, vshift=15)
    offset, conf, minval = SyncNetInstance(reference_net, device="cpu").evaluate(opt)
    ours_net = SyncNet()
    ours_net.load_state_dict(state)
    result = LSE(ours_net).compute_video(clip["frames"], None, audio_path=clip["audio"], fps=25)
    assert result["lse_d"] == pytest.approx(minval, abs=1e-4)
    assert result["lse_c"] == pytest.approx(conf, abs=1e-4)
    assert result["av_offset"] == offset
    assert result["lse_c"] > 0


def test_batched_distances_equal_calc_pdist() -> None:
    from syncnet_python.SyncNetInstance import calc_pdist

    generator = torch.Generator().manual_seed(3)
    lip, audio = torch.randn(40, 16, generator=generator), torch.randn(40, 16, generator=generator)
    mdist = torch.mean(torch.stack(calc_pdist(lip, audio, vshift=15), 1), 1)
    minval, minidx = torch.min(mdist, 0)
    result = sync_scores(lip, audio)
    assert result["lse_d"] == pytest.approx(float(minval), rel=1e-6)
    assert result["lse_c"] == pytest.approx(float(torch.median(mdist) - minval), rel=1e-5)
    assert result["av_offset"] == 15 - int(minidx)


@pytest.mark.parametrize("shift", [2, -3])
def test_shifting_the_audio_moves_the_offset(shift: int) -> None:
    """A constructed synchronised pair: lip and audio embeddings of frame t are equal, so the
    best offset is 0; delaying the audio by k frames moves it by k."""
    generator = torch.Generator().manual_seed(4)
    per_frame = torch.randn(60, 32, generator=generator)
    assert sync_scores(per_frame, per_frame)["av_offset"] == 0
    delayed = torch.roll(per_frame, shift, dims=0)  # audio window t holds frame t - shift
    assert sync_scores(per_frame, delayed)["av_offset"] == -shift


def test_other_frame_rates_are_converted_as_ffmpeg_r_25(clip, tmp_path: Path) -> None:
    """A 30 fps video scores as the frames ``ffmpeg -r 25`` makes of it (run_pipeline.py)."""
    import subprocess

    from talking_heads.utils.media import ffmpeg_exe, read_video

    rgb = (clip["frames"] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    lossless = ("-c:v", "libx264rgb", "-qp", "0")
    raw = ("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "224x224", "-r", "30", "-i", "-")
    ffmpeg = (ffmpeg_exe(), "-nostdin", "-loglevel", "error")
    subprocess.run([*ffmpeg, *raw, *lossless, str(tmp_path / "30.mp4")], input=rgb.tobytes())
    subprocess.run(
        [*ffmpeg, "-i", str(tmp_path / "30.mp4"), "-r", "25", *lossless, str(tmp_path / "25.mp4")]
    )
    at_30, fps_30 = read_video(tmp_path / "30.mp4")
    at_25, fps_25 = read_video(tmp_path / "25.mp4")
    assert (fps_30, fps_25, len(at_30), len(at_25)) == (30, 25, 30, 27)
    np.testing.assert_array_equal(at_30, rgb)  # lossless: the conversion only picks frames
    np.testing.assert_array_equal(at_25, rgb[constant_rate_cfr_indices(30, 30, 25)])

    def frames(video: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255

    metric = LSE(_loaded(seeded_syncnet_state()))
    converted = metric.compute_video(frames(at_30), None, audio_path=clip["audio"], fps=30)
    direct = metric.compute_video(frames(at_25), None, audio_path=clip["audio"], fps=25)
    assert converted == direct
    assert np.isfinite(converted["lse_d"])
    as_if_25 = metric.compute_video(frames(at_30), None, audio_path=clip["audio"], fps=25)
    assert as_if_25 != converted


def test_lse_short_videos_and_other_audio_rates(clip, tmp_path: Path) -> None:
    metric = LSE(SyncNet())
    short = metric.compute_video(clip["frames"][:5], None, audio_path=clip["audio"], fps=25)
    assert np.isnan(short["lse_d"])
    # audio at another rate is converted to 16 kHz mono first (as the pipeline's ffmpeg call)
    speech = synthesize_speech()
    write_wav(
        tmp_path / "speech_22k.wav",
        np.interp(np.arange(0, len(speech), 16 / 22.05), np.arange(len(speech)), speech).astype(
            np.float32
        ),
        22050,
    )
    converted = metric.compute_video(clip["frames"], None, audio_path=tmp_path / "speech_22k.wav")
    assert np.isfinite(converted["lse_d"])


def test_missing_syncnet_weights_name_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(weights.MissingWeightsError, match=r"syncnet_v2\.model"):
        build_metric("lse")


@pytest.mark.parity("mouth_sync_dlib")
@pytest.mark.parametrize("shift", [-3, 0, 4])
def test_mouth_sync_finds_the_offset_of_speech_that_follows_the_mouth(
    shift: int, tmp_path: Path
) -> None:
    """Audio whose loudness follows carphone's dlib mouth opening correlates with it at the
    offset the audio was moved by (positive: audio first, as SyncNet's AV offset)."""
    from talking_heads.metrics.sync import MouthSyncDlib, mouth_opening

    frames = carphone_frames(100)
    metric = MouthSyncDlib()
    opening = np.array([mouth_opening(p) for p in metric.faces(frames)])  # a face in each
    envelope = (opening - opening.min()) / np.ptp(opening) + 0.05
    speech = np.random.default_rng(0).standard_normal(100 * 640) * np.repeat(envelope, 640) * 0.3
    moved = np.concatenate([np.zeros(max(-shift, 0) * 640), speech])[max(shift, 0) * 640 :]
    write_wav(tmp_path / "speech.wav", np.pad(moved, (0, 20 * 640)).astype(np.float32))
    result = metric.compute_video(
        to_tensor(frames).float(), None, audio_path=tmp_path / "speech.wav", fps=25
    )
    assert result["mouth_sync_offset"] == shift
    assert result["mouth_sync_corr"] > 0.8 and result["mouth_sync_conf"] > 0.5
    noise = np.random.default_rng(1).standard_normal(120 * 640) * 0.3
    write_wav(tmp_path / "noise.wav", noise.astype(np.float32))
    unrelated = metric.compute_video(
        to_tensor(frames).float(), None, audio_path=tmp_path / "noise.wav", fps=25
    )
    assert unrelated["mouth_sync_corr"] < result["mouth_sync_corr"] - 0.4
    faceless = torch.full((30, 3, 144, 176), 0.5)
    assert all(
        np.isnan(v)
        for v in metric.compute_video(faceless, None, audio_path=tmp_path / "noise.wav").values()
    )
