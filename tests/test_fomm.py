"""FOMM: official state-dict layout, keypoint maths, losses, training and batched animation.

The expected key counts, shapes and parameter counts below are those of first-order-model's
own modules (``modules/keypoint_detector.py``, ``generator.py``, ``discriminator.py``) built
from its ``config/vox-256.yaml`` and ``vox-adv-256.yaml``.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from conftest import PROJECT_ROOT
from motion_testing import (
    assert_training_losses,
    fit_pairs,
    pairs,
    quiet_trainer,
)
from official_params import FOMM_VOX256 as VOX256_MODEL_PARAMS
from talking_heads.models.fomm.animate import FOMMAnimator, movement_scale, normalize_kp
from talking_heads.models.fomm.module import FOMMLightning
from talking_heads.models.fomm.networks import build_networks
from talking_heads.models.motion.blocks import (
    AntiAliasInterpolation2d,
    Transform,
    grid_sample,
    kp2gaussian,
    make_coordinate_grid,
)

# parameter counts of the official vox-256 modules
OFFICIAL_PARAMS = {"kp_detector": 14_215_368, "generator": 45_575_391, "discriminator": 2_758_849}


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
    torch.manual_seed(0)
    return build_networks(copy.deepcopy(VOX256_MODEL_PARAMS))


def _hourglass_keys(prefix: str, blocks: int) -> set[str]:
    norm = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = set()
    for part in ("encoder.down_blocks", "decoder.up_blocks"):
        for i in range(blocks):
            keys |= {f"{prefix}{part}.{i}.conv.{p}" for p in ("weight", "bias")}
            keys |= {f"{prefix}{part}.{i}.norm.{p}" for p in norm}
    return keys


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_model_config_holds_the_official_vox256_values() -> None:
    model_params, train_params = experiment_params("fomm_vox256")
    assert model_params == VOX256_MODEL_PARAMS
    assert train_params["loss_weights"] == {
        "generator_gan": 0,
        "discriminator_gan": 1,
        "feature_matching": [10, 10, 10, 10],
        "perceptual": [10, 10, 10, 10, 10],
        "equivariance_value": 10,
        "equivariance_jacobian": 10,
    }
    assert train_params["epoch_milestones"] == [60, 90]
    assert train_params["scales"] == [1, 0.5, 0.25, 0.125]


def test_kp_detector_has_the_official_vox256_layout(vox_networks) -> None:
    kp_detector = vox_networks[0]
    state = kp_detector.state_dict()
    expected = _hourglass_keys("predictor.", 5) | {
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
    assert _n_params(kp_detector) == OFFICIAL_PARAMS["kp_detector"]
    # the Jacobian head starts at the identity
    assert torch.equal(state["jacobian.bias"], torch.tensor([1.0, 0, 0, 1] * 10))
    assert not state["jacobian.weight"].any()


def test_generator_and_discriminator_have_the_official_layout(vox_networks) -> None:
    _, generator, discriminator = vox_networks
    state = generator.state_dict()
    assert len(state) == 196
    assert sum(k.startswith("dense_motion_network.") for k in state) == 75
    assert {k.split(".")[0] for k in state} == {
        "dense_motion_network",
        "first",
        "down_blocks",
        "bottleneck",
        "up_blocks",
        "final",
    }
    assert _hourglass_keys("dense_motion_network.hourglass.", 5) <= set(state)
    shapes = {
        "dense_motion_network.mask.weight": (11, 108, 7, 7),
        "dense_motion_network.occlusion.weight": (1, 108, 7, 7),
        "dense_motion_network.down.weight": (3, 1, 13, 13),
        "dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight": (128, 44, 3, 3),
        "first.conv.weight": (64, 3, 7, 7),
        "down_blocks.1.conv.weight": (256, 128, 3, 3),
        "up_blocks.1.conv.weight": (64, 128, 3, 3),
        "bottleneck.r5.conv2.weight": (256, 256, 3, 3),
        "final.weight": (3, 64, 7, 7),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert _n_params(generator) == OFFICIAL_PARAMS["generator"]

    disc = discriminator.state_dict()
    expected = {"discs.1.conv.bias"} | {f"discs.1.conv.weight_{s}" for s in ("orig", "u", "v")}
    for i in range(4):
        expected |= {f"discs.1.down_blocks.{i}.conv.{p}" for p in ("bias", "weight_orig")}
        expected |= {f"discs.1.down_blocks.{i}.conv.weight_{p}" for p in ("u", "v")}
        if i:  # InstanceNorm (affine, no running statistics) after the first block
            expected |= {f"discs.1.down_blocks.{i}.norm.{p}" for p in ("weight", "bias")}
    assert set(disc) == expected and len(disc) == 26
    assert disc["discs.1.down_blocks.3.conv.weight_orig"].shape == (512, 256, 4, 4)
    assert disc["discs.1.down_blocks.1.conv.weight_v"].shape == (1024,)
    assert _n_params(discriminator) == OFFICIAL_PARAMS["discriminator"]


def test_keypoint_conditioned_discriminator_of_vox_adv() -> None:
    params = copy.deepcopy(VOX256_MODEL_PARAMS)
    params["discriminator_params"].pop("sn")
    params["discriminator_params"]["use_kp"] = True
    discriminator = build_networks(params)[2]
    state = discriminator.state_dict()
    assert len(state) == 16 and "discs.1.conv.weight" in state
    assert state["discs.1.down_blocks.0.conv.weight"].shape == (64, 13, 4, 4)  # 3 + 10 heatmaps
    kp = {"value": torch.rand(1, 10, 2) * 2 - 1}
    out = discriminator({"prediction_1": torch.rand(1, 3, 64, 64)}, kp=kp)
    assert [f.shape[1] for f in out["feature_maps_1"]] == [64, 128, 256, 512]
    assert out["prediction_map_1"].shape[:2] == (1, 1)


def test_heatmap_size_and_keypoint_outputs(vox_networks) -> None:
    kp_detector = vox_networks[0].eval()
    with torch.no_grad():
        out = kp_detector(torch.rand(2, 3, 256, 256))
        heatmaps = kp_detector.kp(
            kp_detector.predictor(kp_detector.down(torch.rand(1, 3, 256, 256)))
        )
    assert heatmaps.shape[-2:] == (58, 58)  # pad 0 on a 64² feature map
    assert out["value"].shape == (2, 10, 2) and out["jacobian"].shape == (2, 10, 2, 2)
    assert out["value"].abs().max() <= 1
    # untrained: the heatmap-weighted Jacobian head gives exactly the identity
    torch.testing.assert_close(out["jacobian"], torch.eye(2).expand(2, 10, 2, 2))


def test_antialias_kernel_for_quarter_scale() -> None:
    down = AntiAliasInterpolation2d(3, 0.25)
    assert down.weight.shape == (3, 1, 13, 13)
    assert "weight" in down.state_dict()
    kernel = down.weight[0, 0].double()
    assert kernel.sum().item() == pytest.approx(1.0, abs=1e-6)
    coords = torch.arange(13, dtype=torch.float64) - 6
    gauss = torch.exp(-(coords**2) / (2 * 1.5**2))  # σ = (1/0.25 − 1)/2 = 1.5
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
    heatmap = kp2gaussian({"value": kp}, (33, 33), 0.01)[0, 0]
    row, col = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
    assert grid[row, col].tolist() == pytest.approx([0.5, -0.25])
    assert heatmap.max().item() == pytest.approx(1.0)
    # variance 0.01: one grid step (0.0625) away the value is exp(-0.0625² / 0.02)
    assert heatmap[row, col + 1].item() == pytest.approx(np.exp(-(0.0625**2) / 0.02), rel=1e-5)


def test_transform_with_zero_noise_is_identity() -> None:
    transform = Transform(2, sigma_affine=0.0, sigma_tps=0.0, points_tps=5)
    frame = torch.rand(2, 3, 16, 16)
    identity = make_coordinate_grid((16, 16)).expand(2, 16, 16, 2)
    # the official code samples with torch's default align_corners=False, under which the
    # [-1, 1] corner-centred grid is a slight zoom, not the identity it is with True
    torch.testing.assert_close(
        transform.transform_frame(frame),
        torch.nn.functional.grid_sample(
            frame, identity, padding_mode="reflection", align_corners=False
        ),
    )
    assert (transform.transform_frame(frame) - frame).abs().max() > 1e-3
    torch.testing.assert_close(grid_sample(frame, identity, align_corners=True), frame)
    coordinates = (torch.rand(2, 4, 2) * 2 - 1).requires_grad_(True)
    torch.testing.assert_close(transform.warp_coordinates(coordinates), coordinates)
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
    # J_drv · J_drv0⁻¹ · J_src = 3I · I · 2I
    torch.testing.assert_close(out["jacobian"], torch.eye(2).expand(1, 4, 2, 2) * 6)
    unscaled = normalize_kp(kp_source, kp_driving, kp_initial, use_relative_movement=True)
    torch.testing.assert_close(unscaled["value"], square * 0.5 + 0.2)
    assert unscaled["jacobian"] is kp_driving["jacobian"]
    absolute = normalize_kp(kp_source, kp_driving, kp_initial)
    assert absolute["value"] is kp_driving["value"]


def test_movement_scale_falls_back_to_one_on_a_degenerate_hull() -> None:
    line = {"value": torch.tensor([[[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]])}
    square = {"value": torch.tensor([[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]])}
    with pytest.warns(RuntimeWarning, match="degenerate"):
        assert movement_scale(line, square) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert movement_scale(square, {"value": square["value"] / 2}) == pytest.approx(2.0)


def demo_module(**loss_weights) -> FOMMLightning:
    model_params, train_params = experiment_params("fomm_demo")
    train_params["loss_weights"].update(loss_weights)
    return FOMMLightning(
        OmegaConf.create(model_params),  # as Hydra would pass it without _convert_
        train_params,
        perceptual_pretrained=False,
        resolution=64,
    )


def test_training_steps_update_weights_with_finite_losses() -> None:
    torch.manual_seed(0)
    module = demo_module()
    assert isinstance(module.hparams["model_params"], dict)
    trainer, loader, before = fit_pairs(module, torch.rand(4, 3, 64, 64), batch_size=2)
    assert_training_losses(
        trainer,
        [
            "perceptual",
            "equivariance_value",
            "equivariance_jacobian",
        ],
        positive=True,
    )
    after = module.state_dict()
    for key in ("generator.final.weight", "kp_detector.kp.weight", "generator.first.conv.weight"):
        assert not torch.equal(before[key], after[key]), key
    # no GAN in this config: the discriminator is untouched, as upstream
    assert torch.equal(
        before["discriminator.discs.1.conv.bias"], after["discriminator.discs.1.conv.bias"]
    )
    assert not any("vgg" in key for key in after)
    (metrics,) = trainer.validate(module, loader, verbose=False)
    assert 0 < metrics["val/l1"] < 1


def test_gan_training_steps_the_discriminator_once_per_iteration() -> None:
    torch.manual_seed(0)
    module = demo_module(generator_gan=1)
    before = copy.deepcopy(module.discriminator.state_dict())
    trainer = quiet_trainer(max_steps=2)
    trainer.fit(module, DataLoader(pairs(torch.rand(4, 3, 64, 64)), batch_size=2))
    assert trainer.global_step == 2 and trainer.fit_loop.epoch_loop.batch_progress.total.ready == 2
    metrics = trainer.callback_metrics
    assert {"train/gen_gan", "train/feature_matching", "train/disc_gan"} <= set(metrics)
    assert all(torch.isfinite(v) for v in metrics.values())
    after = module.discriminator.state_dict()
    assert not torch.equal(before["discs.1.conv.bias"], after["discs.1.conv.bias"])
    opt_discriminator = trainer.optimizers[1]
    assert all(opt_discriminator.state[p]["step"] == 2 for p in module.discriminator.parameters())


def upstream_loop(
    animator: FOMMAnimator, source: torch.Tensor, driving: torch.Tensor, relative: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """demo.py's make_animation: one frame at a time, the full generator each time.

    Returns the predictions and the keypoints given to the generator.
    """
    kp_detector, generator = animator.kp_detector, animator.generator
    predictions, keypoints = [], []
    with torch.no_grad():
        kp_source = kp_detector(source[None])
        kp_initial = kp_detector(driving[:1])
        for frame in driving:
            kp_norm = normalize_kp(
                kp_source,
                kp_detector(frame[None]),
                kp_initial,
                adapt_movement_scale=relative,
                use_relative_movement=relative,
                use_relative_jacobian=relative,
            )
            out = generator(source[None], kp_source=kp_source, kp_driving=kp_norm)
            predictions.append(out["prediction"])
            keypoints.append(kp_norm["value"])
    return torch.cat(predictions), torch.cat(keypoints)


def test_batched_animation_equals_the_per_frame_loop(tmp_path) -> None:
    torch.manual_seed(0)
    module = demo_module()
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(module, DataLoader(pairs(torch.rand(4, 3, 64, 64)), batch_size=2))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    animator = FOMMAnimator.from_checkpoint(path)
    assert animator.resolution == 64
    assert not animator.generator.training and not animator.kp_detector.training
    source, driving = torch.rand(3, 64, 64), torch.rand(7, 3, 64, 64)

    relative, kp_relative = upstream_loop(animator, source, driving, relative=True)
    absolute, kp_absolute = upstream_loop(animator, source, driving, relative=False)
    for batch_size in (4, 1):
        batched = animator.animate(source, driving, batch_size=batch_size)
        assert batched.shape == (7, 3, 64, 64)
        torch.testing.assert_close(batched, relative, atol=1e-5, rtol=0)
        batched = animator.animate(source, driving, relative=False, batch_size=batch_size)
        torch.testing.assert_close(batched, absolute, atol=1e-5, rtol=0)
    # relative transfer moves the source's keypoints, absolute uses the driving ones; even an
    # untrained generator's output follows (by ~500× the batching round-off of 1e-7)
    assert (kp_relative - kp_absolute).abs().max() > 0.01
    assert (relative - absolute).abs().max() > 1e-5

    reconstruction = animator.reconstruct(driving, batch_size=3)
    torch.testing.assert_close(
        reconstruction,
        upstream_loop(animator, driving[0], driving, relative=False)[0],
        atol=1e-5,
        rtol=0,
    )


def test_official_checkpoint_layout_loads(tmp_path) -> None:
    model_params, _ = experiment_params("fomm_demo")
    torch.manual_seed(1)
    kp_detector, generator, discriminator = build_networks(model_params)
    path = tmp_path / "00000099-checkpoint.pth.tar"
    torch.save(
        {
            "generator": generator.state_dict(),
            "kp_detector": kp_detector.state_dict(),
            "discriminator": discriminator.state_dict(),
            "optimizer_generator": torch.optim.Adam(generator.parameters()).state_dict(),
            "epoch": 99,
        },
        path,
    )
    animator = FOMMAnimator.from_official(path, model_params, resolution=64)
    for ours, theirs in ((animator.generator, generator), (animator.kp_detector, kp_detector)):
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key


def test_perceptual_vgg_weights_are_checked(tmp_path, monkeypatch) -> None:
    from talking_heads.nets.vgg19 import load_vgg19
    from talking_heads.weights import (
        ALLOW_UNVERIFIED_ENV,
        ChecksumMismatchError,
        MissingWeightsError,
    )

    monkeypatch.delenv(ALLOW_UNVERIFIED_ENV, raising=False)
    assert load_vgg19(False).pretrained is False
    with pytest.raises(MissingWeightsError, match=r"vgg19-dcbb9e9d\.pth"):
        load_vgg19(tmp_path / "absent.pth")
    impostor = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, impostor)
    with pytest.raises(ChecksumMismatchError):
        load_vgg19(str(impostor))
