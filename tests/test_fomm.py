"""FOMM: official state-dict layout, keypoint maths, losses, training and batched animation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from conftest import PROJECT_ROOT
from talking_heads.models.fomm.animate import FOMMAnimator, normalize_kp
from talking_heads.models.fomm.module import FOMMLightning
from talking_heads.models.fomm.networks import build_networks
from talking_heads.models.motion.blocks import (
    AntiAliasInterpolation2d,
    Transform,
    kp2gaussian,
    make_coordinate_grid,
)


def experiment_params(name: str) -> tuple[dict, dict]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3"):
        cfg = compose("train.yaml", overrides=[f"experiment={name}"])
    return (
        OmegaConf.to_container(cfg.model.model_params, resolve=True),
        OmegaConf.to_container(cfg.model.train_params, resolve=True),
    )


@pytest.fixture(scope="module")
def vox_networks():
    return build_networks(experiment_params("fomm_vox256")[0])


def _encoder_decoder_keys(prefix: str, blocks: int) -> set[str]:
    norm = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = set()
    for part in ("encoder.down_blocks", "decoder.up_blocks"):
        for i in range(blocks):
            keys |= {f"{prefix}{part}.{i}.conv.{p}" for p in ("weight", "bias")}
            keys |= {f"{prefix}{part}.{i}.norm.{p}" for p in norm}
    return keys


def test_kp_detector_has_the_official_vox256_layout(vox_networks) -> None:
    kp_detector = vox_networks[0]
    state = kp_detector.state_dict()
    expected = _encoder_decoder_keys("predictor.", 5) | {
        "kp.weight",
        "kp.bias",
        "jacobian.weight",
        "jacobian.bias",
        "down.weight",
    }
    assert set(state) == expected and len(state) == 75
    assert state["kp.weight"].shape == (10, 35, 7, 7)
    assert state["jacobian.weight"].shape == (40, 35, 7, 7)
    assert state["down.weight"].shape == (3, 1, 13, 13)
    assert state["predictor.encoder.down_blocks.4.conv.weight"].shape == (1024, 512, 3, 3)


def test_generator_and_discriminator_have_the_official_layout(vox_networks) -> None:
    _, generator, discriminator = vox_networks
    state = generator.state_dict()
    assert len(state) == 196
    assert _encoder_decoder_keys("dense_motion_network.hourglass.", 5) <= set(state)
    assert state["dense_motion_network.mask.weight"].shape == (11, 108, 7, 7)
    assert state["dense_motion_network.occlusion.weight"].shape == (1, 108, 7, 7)
    assert state["dense_motion_network.down.weight"].shape == (3, 1, 13, 13)
    assert state["first.conv.weight"].shape == (64, 3, 7, 7)
    assert {f"bottleneck.r{i}.conv1.weight" for i in range(6)} <= set(state)
    assert state["final.weight"].shape == (3, 64, 7, 7)
    disc = discriminator.state_dict()
    assert "discs.1.down_blocks.0.conv.weight_orig" in disc
    assert {"discs.1.down_blocks.3.conv.weight_u", "discs.1.conv.weight_v"} <= set(disc)
    assert all(key.startswith("discs.1.") for key in disc)
    params = sum(p.numel() for p in generator.parameters())
    assert abs(params - 45.58e6) < 0.01e6  # the reference's measured 45.58M


def test_heatmap_size_and_keypoints_in_range(vox_networks) -> None:
    kp_detector = vox_networks[0].eval()
    with torch.no_grad():
        out = kp_detector(torch.rand(2, 3, 256, 256))
        heatmaps = kp_detector.kp(
            kp_detector.predictor(kp_detector.down(torch.rand(1, 3, 256, 256)))
        )
    assert heatmaps.shape[-2:] == (58, 58)  # pad 0 on a 64² feature map
    assert out["value"].shape == (2, 10, 2) and out["jacobian"].shape == (2, 10, 2, 2)
    assert out["value"].abs().max() <= 1


def test_antialias_kernel_for_quarter_scale() -> None:
    down = AntiAliasInterpolation2d(3, 0.25)
    assert down.weight.shape == (3, 1, 13, 13)
    kernel = down.weight[0, 0].double()
    assert kernel.sum().item() == pytest.approx(1.0, abs=1e-6)
    coords = torch.arange(13, dtype=torch.float64) - 6
    gauss = torch.exp(-(coords**2) / (2 * 1.5**2))
    expected = torch.outer(gauss, gauss) / torch.outer(gauss, gauss).sum()
    torch.testing.assert_close(kernel, expected, atol=1e-7, rtol=0)
    image = torch.rand(1, 3, 256, 256)
    assert down(image).shape == (1, 3, 64, 64)
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(
        AntiAliasInterpolation2d(3, 0.5)(flat)[..., 2:-2, 2:-2], flat[..., :12, :12]
    )


def test_kp2gaussian_peaks_at_the_keypoint() -> None:
    grid = make_coordinate_grid((33, 33))
    kp = torch.tensor([[[0.5, -0.25]]])
    heatmap = kp2gaussian(kp, (33, 33), 0.01)[0, 0]
    row, col = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
    assert grid[row, col].tolist() == pytest.approx([0.5, -0.25])
    assert heatmap.max().item() == pytest.approx(1.0)


def test_transform_with_zero_noise_is_identity() -> None:
    transform = Transform(2, sigma_affine=0.0, sigma_tps=0.0, points_tps=5)
    frame = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(transform.transform_frame(frame), frame, atol=1e-5, rtol=0)
    coordinates = torch.rand(2, 4, 2, requires_grad=True) * 2 - 1
    jacobian = transform.jacobian(coordinates)
    torch.testing.assert_close(jacobian, torch.eye(2).expand(2, 4, 2, 2), atol=1e-5, rtol=0)


def test_normalize_kp_relative_with_scale() -> None:
    square = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    kp_source = {"value": square * 0.5, "jacobian": torch.eye(2).expand(1, 4, 2, 2) * 2}
    kp_initial = {"value": square, "jacobian": torch.eye(2).expand(1, 4, 2, 2).clone()}
    kp_driving = {"value": square + 0.2, "jacobian": torch.eye(2).expand(1, 4, 2, 2) * 3}
    out = normalize_kp(
        kp_source,
        kp_driving,
        kp_initial,
        adapt_movement_scale=True,
        use_relative_movement=True,
        use_relative_jacobian=True,
    )
    # hull areas 0.25 and 1 → scale 0.5; the source moves by 0.5 × 0.2
    torch.testing.assert_close(out["value"], square * 0.5 + 0.1)
    torch.testing.assert_close(out["jacobian"], torch.eye(2).expand(1, 4, 2, 2) * 6)
    absolute = normalize_kp(kp_source, kp_driving, kp_initial)
    assert absolute["value"] is kp_driving["value"]


def demo_module() -> FOMMLightning:
    model_params, train_params = experiment_params("fomm_demo")
    return FOMMLightning(model_params, train_params, perceptual_pretrained=False, resolution=64)


def test_training_steps_update_weights_with_finite_losses() -> None:
    torch.manual_seed(0)
    module = demo_module()
    before = copy.deepcopy(module.generator.state_dict())
    frames = torch.rand(8, 3, 64, 64)
    data = [{"source": frames[i], "driving": frames[7 - i]} for i in range(8)]
    trainer = pl.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(data, batch_size=4))
    assert trainer.global_step == 2
    losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    assert {"train/perceptual", "train/equivariance_value", "train/equivariance_jacobian"} <= set(
        losses
    )
    assert all(np.isfinite(v) and v > 0 for v in losses.values())
    after = module.generator.state_dict()
    assert not torch.equal(before["final.weight"], after["final.weight"])
    assert not any(key.startswith("_vgg") or key.startswith("vgg") for key in module.state_dict())


def test_gan_losses_step_the_discriminator() -> None:
    model_params, train_params = experiment_params("fomm_demo")
    train_params["loss_weights"]["generator_gan"] = 1
    module = FOMMLightning(model_params, train_params, perceptual_pretrained=False, resolution=64)
    batch = {"source": torch.rand(2, 3, 64, 64), "driving": torch.rand(2, 3, 64, 64)}
    losses, generated = module.generator_losses(batch)
    assert {"gen_gan", "feature_matching"} <= set(losses)
    disc = module.discriminator_losses(batch, generated)
    assert disc["disc_gan"].item() > 0


def test_batched_animation_equals_per_frame_loop(tmp_path) -> None:
    torch.manual_seed(0)
    module = demo_module()
    trainer = pl.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    frames = torch.rand(4, 3, 64, 64)
    trainer.fit(
        module,
        DataLoader(
            [{"source": frames[i], "driving": frames[3 - i]} for i in range(4)], batch_size=2
        ),
    )
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    animator = FOMMAnimator.from_checkpoint(path)
    assert animator.resolution == 64
    source, driving = torch.rand(3, 64, 64), torch.rand(7, 3, 64, 64)
    batched = animator.animate(source, driving, batch_size=4)
    looped = animator.animate(source, driving, batch_size=1)
    assert batched.shape == (7, 3, 64, 64)
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=0)
    absolute = animator.animate(source, driving, relative=False, batch_size=4)
    assert not torch.allclose(absolute, batched, atol=1e-6, rtol=0)
    reconstruction = animator.reconstruct(driving, batch_size=3)
    torch.testing.assert_close(
        reconstruction,
        animator.animate(driving[0], driving, relative=False, batch_size=7),
        atol=1e-5,
        rtol=0,
    )
