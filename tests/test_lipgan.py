"""LipGAN: the Keras .h5 import (official layout in tests/data/official_layouts/lipgan.json),
the networks' Keras semantics, the contrastive loss, training steps and inference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from talking_heads.models.checkpoints import CheckpointLayoutError
from talking_heads.models.interface import AudioClip, GenerationInputs
from talking_heads.models.lipgan.audio import frame_windows, matlab_mfcc, window_starts
from talking_heads.models.lipgan.checkpoint import import_official
from talking_heads.models.lipgan.generate import LipGANGenerator
from talking_heads.models.lipgan.module import LipGANLightning
from talking_heads.models.lipgan.networks import (
    LipGANDiscriminator,
    LipGANGeneratorNet,
    contrastive_loss,
)

h5py = pytest.importorskip("h5py")
LAYOUTS = json.loads((Path(__file__).parent / "data/official_layouts/lipgan.json").read_text())[
    "layouts"
]


def write_h5(path: Path, layout: dict, *, full_model: bool, seed: int, drop: str = "") -> dict:
    """A Keras 2.2.4-layout file with random weights; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {}
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        if full_model:
            f.attrs["model_config"] = b"{}"
        # Keras lists weightless layers too, and orders layer_names by depth, not build order
        names = ["input_1", *reversed([n for n in layout if n != drop]), "activation_1"]
        root.attrs["layer_names"] = [n.encode() for n in names]
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.2.4"
        for name in names:
            group = root.create_group(name)
            weights = layout.get(name, {})
            group.attrs["weight_names"] = [w.encode() for w in weights]
            for weight, shape in weights.items():
                value = rng.standard_normal(shape).astype(np.float32) * 0.1
                if "moving_variance" in weight:
                    value = np.abs(value) + 0.5
                group.create_dataset(weight, data=value)
                arrays[weight] = value
    return arrays


def test_layout_counts_match_the_official_code() -> None:
    # counted by hand from create_model_residual: 26 face + 22 audio + 19 decoder Conv2D,
    # 6 Conv2DTranspose, one BatchNormalization after each but the output convolution
    gen = LAYOUTS["gen_residual_mfcc12x35"]
    prefixes = [n.rsplit("_", 1)[0] for n in gen]
    assert prefixes.count("conv2d") == 67
    assert prefixes.count("conv2d_transpose") == 6
    assert prefixes.count("batch_normalization") == 72
    assert gen["conv2d_1"]["conv2d_1/kernel:0"] == [7, 7, 6, 32]
    assert gen["conv2d_67"]["conv2d_67/kernel:0"] == [1, 1, 16, 3]  # after conv_block(x, 16)
    # the master audio input 12x35: the (4, 5) valid convolution ends the audio encoder
    assert any(w[f"{n}/kernel:0"][:2] == [4, 5] for n, w in gen.items() if f"{n}/kernel:0" in w)
    # create_model discards conv_block(input_audio, 64): conv2d_9 is used up but absent
    basic = LAYOUTS["gen_basic_mfcc12x35"]
    assert "conv2d_8" in basic and "conv2d_9" not in basic and "conv2d_10" in basic
    assert min(int(n.rsplit("_", 1)[1]) for n in LAYOUTS["disc_mfcc12x35"] if "conv2d" in n) == 68


def keras_same_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """NHWC convolution with TensorFlow's SAME padding, from the h5 arrays."""
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1:3]
    oh, ow = -(-h // stride), -(-w // stride)
    ph = max((oh - 1) * stride + kh - h, 0)
    pw = max((ow - 1) * stride + kw - w, 0)
    x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * oh : stride, j : j + stride * ow : stride]
            out += patch @ kernel[i, j]
    return out + bias


def keras_bn_relu(x: np.ndarray, arrays: dict, name: str) -> np.ndarray:
    g, b, m, v = (
        arrays[f"{name}/{k}:0"] for k in ("gamma", "beta", "moving_mean", "moving_variance")
    )
    return np.maximum((x - m) / np.sqrt(v + 1e-3) * g + b, 0)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    folder = tmp_path_factory.mktemp("lipgan")
    gen = write_h5(folder / "gen.h5", LAYOUTS["gen_residual_mfcc12x35"], full_model=True, seed=1)
    disc = write_h5(folder / "disc.h5", LAYOUTS["disc_mfcc12x35"], full_model=False, seed=2)
    out = import_official(folder / "gen.h5", folder / "lipgan.ckpt", {"audio": "mel80x27"})
    return out, gen, disc


def test_import_reproduces_keras_layers(imported: tuple[Path, dict, dict]) -> None:
    out, gen, disc = imported
    checkpoint = torch.load(out, weights_only=True)
    # the file is master's MFCC generator although the experiment said mel: found from layers
    assert checkpoint["hyper_parameters"]["audio"] == "mfcc12x35"
    assert checkpoint["hyper_parameters"]["variant"] == "residual"
    net = LipGANGenerator.from_checkpoint(out).generator.double()
    rng = np.random.default_rng(0)
    x = rng.random((2, 96, 96, 6))
    # first block (7x7, stride 1) and the asymmetric stride-2 5x5 block, from the h5 arrays
    ref = keras_bn_relu(
        keras_same_conv(x, gen["conv2d_1/kernel:0"], gen["conv2d_1/bias:0"], 1),
        gen,
        "batch_normalization_1",
    )
    ref2 = keras_bn_relu(
        keras_same_conv(ref, gen["conv2d_2/kernel:0"], gen["conv2d_2/bias:0"], 2),
        gen,
        "batch_normalization_2",
    )
    layers = net.layers
    with torch.no_grad():
        t = torch.from_numpy(x).permute(0, 3, 1, 2)
        y = torch.relu(layers["batch_normalization_1"](layers["conv2d_1"](t)))
        y2 = torch.relu(layers["batch_normalization_2"](layers["conv2d_2"](y)))
    np.testing.assert_allclose(y.permute(0, 2, 3, 1).numpy(), ref, rtol=1e-6, atol=1e-8)
    assert y2.shape[-1] == 48
    np.testing.assert_allclose(y2.permute(0, 2, 3, 1).numpy(), ref2, rtol=1e-6, atol=1e-8)
    # transposed kernels are (h, w, out, in) in Keras, (in, out, h, w) here
    kernel = gen["conv2d_transpose_2/kernel:0"]
    ours = checkpoint["state_dict"]["generator.layers.conv2d_transpose_2.weight"]
    np.testing.assert_array_equal(ours.numpy(), kernel.transpose(3, 2, 0, 1))
    # disc.h5 beside it, its names shifted by the session counter (conv2d_68 → conv2d_1)
    state = checkpoint["state_dict"]
    np.testing.assert_array_equal(
        state["disc.layers.conv2d_1.weight"].numpy(),
        disc["conv2d_68/kernel:0"].transpose(3, 2, 0, 1),
    )
    assert state["disc.layers.instance_normalization_3.weight"].item() == pytest.approx(
        float(disc["instance_normalization_3/gamma:0"][0])
    )


def test_refuses_a_file_with_a_missing_layer(tmp_path: Path) -> None:
    layout = LAYOUTS["gen_residual_mfcc12x35"]
    write_h5(tmp_path / "gen.h5", layout, full_model=True, seed=3, drop="batch_normalization_40")
    with pytest.raises(CheckpointLayoutError, match=r"missing: batch_normalization_40"):
        import_official(tmp_path / "gen.h5", tmp_path / "out.ckpt", {"audio": "mfcc12x35"})
    assert not (tmp_path / "out.ckpt").exists()


def test_refuses_a_wav2lip_torch_file(tmp_path: Path) -> None:
    from talking_heads.models.lipsync.networks import Wav2LipUNet

    torch.save({"state_dict": Wav2LipUNet(8).state_dict()}, tmp_path / "wav2lip.pth")
    with pytest.raises(CheckpointLayoutError, match="not a Keras HDF5 file"):
        import_official(tmp_path / "wav2lip.pth", tmp_path / "out.ckpt", {})


def test_contrastive_loss_by_hand() -> None:
    d = torch.tensor([[0.3], [1.4], [0.5]])
    y = torch.tensor([[0.0], [1.0], [1.0]])
    # (0.3² + max(0, 1 - 1.4)² + (1 - 0.5)²) / 3
    assert contrastive_loss(y, d).item() == pytest.approx((0.09 + 0.0 + 0.25) / 3)


def test_keras_same_shapes() -> None:
    gen = LipGANGeneratorNet(16, "residual", "mel80x27")
    disc = LipGANDiscriminator(16, "mel80x27")
    with torch.no_grad():
        out = gen(torch.rand(2, 6, 96, 96), torch.randn(2, 1, 80, 27))
        d = disc(torch.rand(2, 3, 96, 96), torch.randn(2, 1, 80, 27))
    assert out.shape == (2, 3, 96, 96) and out.min() >= 0 and out.max() <= 1
    # unit-norm embeddings: their distance lies in [0, 2]
    assert d.shape == (2, 1) and (d >= 0).all() and (d <= 2 + 1e-6).all()
    assert gen.layers["batch_normalization_1"].eps == 1e-3
    assert gen.layers["batch_normalization_1"].momentum == pytest.approx(0.2)


def test_training_steps_change_weights() -> None:
    import pytorch_lightning as pl

    torch.manual_seed(0)
    model = LipGANLightning(width=16, audio="mel80x27")
    batches = [
        {
            "face": torch.rand(3, 3, 96, 96),
            "reference": torch.rand(3, 3, 96, 96),
            "audio": torch.randn(3, 1, 80, 27),
        }
        for _ in range(2)
    ]
    before_g = model.generator.layers["conv2d_1"].weight.detach().clone()
    before_d = model.disc.layers["conv2d_1"].weight.detach().clone()
    trainer = pl.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(model, torch.utils.data.DataLoader(batches, batch_size=None))
    metrics = trainer.callback_metrics
    for name in ("train/mae", "train/adv", "train/disc_sync", "train/disc_fake", "train/loss"):
        assert torch.isfinite(metrics[name])
    assert not torch.equal(before_g, model.generator.layers["conv2d_1"].weight)
    assert not torch.equal(before_d, model.disc.layers["conv2d_1"].weight)


def test_windows_are_centred_like_batch_inference() -> None:
    # master at 25 fps: frame f ↔ the 35 MFCC steps from 4f - 16 (chunk k = f - 4 at 40k ms)
    assert window_starts(8, 25.0, "mfcc12x35").tolist() == [4 * f - 16 for f in range(8)]
    samples = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32) * 0.5
    mfcc = matlab_mfcc(samples)
    assert mfcc.shape == (12, (16000 - 400) // 160 + 1) and np.isfinite(mfcc).all()
    windows = frame_windows(mfcc, 25, 25.0, "mfcc12x35")
    assert windows.shape == (25, 12, 35)
    np.testing.assert_array_equal(windows[10], mfcc[:, 24:59])


def test_synthesize_a_still_face(tmp_path: Path) -> None:
    from skimage import data

    torch.manual_seed(0)
    face = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    face = torch.nn.functional.interpolate(face, size=(256, 256), mode="area")
    t = np.arange(8000) / 16000
    audio = AudioClip((0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)
    generator = LipGANGenerator(LipGANGeneratorNet(16, "residual", "mel80x27"))
    inputs = GenerationInputs(face=face, audio=audio, fps=25.0)
    out = generator.synthesize(inputs, {"box": "20,120,80,180"}, batch_size=4)
    assert out.shape == (12, 3, 256, 256)  # 0.5 s at 25 fps
    assert out.min() >= 0 and out.max() <= 1
    still = (face[0] * 255).round() / 255
    # outside the box the frame is untouched, inside it is the generated face
    assert torch.allclose(out[:, :, 130:, :], still[:, 130:].expand(12, -1, -1, -1), atol=1e-6)
    assert (out[:, :, 20:120, 80:180] - still[:, 20:120, 80:180]).abs().mean() > 0.01
