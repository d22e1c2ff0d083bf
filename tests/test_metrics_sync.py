"""LSE-D / LSE-C: equal to syncnet-python's evaluation on identical random weights and frames;
the AV offset follows a shift of the audio; the batched distance equals calc_pdist."""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from metric_media import carphone_frames
from talking_heads import weights
from talking_heads.datasets.demo import fit_length, synthesize_speech
from talking_heads.metrics import build_metric
from talking_heads.metrics.sync import LSE, SyncNet, sync_scores
from talking_heads.preprocess.audio import write_wav

NUM_FRAMES = 30


def _seeded_syncnet(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random SyncNet weights with BatchNorm statistics in a trained-like range."""
    torch.manual_seed(seed)
    network = SyncNet()
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return network.state_dict()


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


def test_lse_equals_syncnet_python(clip) -> None:
    from syncnet_python.SyncNetInstance import SyncNetInstance
    from syncnet_python.SyncNetModel import S

    state = _seeded_syncnet()
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


def test_lse_skips_videos_it_cannot_align(clip, tmp_path: Path) -> None:
    metric = LSE(SyncNet())
    with pytest.warns(UserWarning, match="30 fps"):
        result = metric.compute_video(clip["frames"], None, audio_path=clip["audio"], fps=30)
    assert all(np.isnan(v) for v in result.values())
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
