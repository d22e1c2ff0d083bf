"""face-vid2vid: official state-dict layout and import, keypoint maths, losses, training and
batched animation.

The official layouts (``tests/data/official_layouts/fv2v.json``) list every state-dict key and
shape of the official modules (zhanglonghao1992/One-Shot_Free-View_Neural_Talking_Head_Synthesis
9511d25) built from ``config/vox-256.yaml`` with the SPADE generator and from
``config/vox-256-beta.yaml`` with the original one.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from motion_testing import (
    assert_batched_matches,
    assert_training_losses,
    config_fixtures,
    fit_pairs,
    layout_state,
    official_layouts,
    pairs,
    quiet_trainer,
    shapes,
)
from official_params import FV2V_VOX256 as VOX256_MODEL_PARAMS
from talking_heads.cli import main
from talking_heads.config import experiment_model_config
from talking_heads.models.checkpoints import CheckpointLayoutError
from talking_heads.models.fv2v import losses as L
from talking_heads.models.fv2v.animate import FreeView, FV2VAnimator, movement_scale, normalize_kp
from talking_heads.models.fv2v.checkpoint import import_official
from talking_heads.models.fv2v.module import FV2VLightning
from talking_heads.models.fv2v.networks import (
    HEEstimator,
    build_networks,
    headpose_pred_to_degree,
    keypoint_transformation,
    rotation_matrix,
)
from talking_heads.nets.hopenet import Hopenet

LAYOUTS = official_layouts("fv2v")
FOMM_LAYOUTS = official_layouts("fomm")
NETWORKS = ("kp_detector", "he_estimator", "generator", "discriminator")


vox_config, demo_config = config_fixtures("fv2v_vox256", "fv2v_demo")


def demo_module(demo_config: dict, generator_type: str = "spade", **loss_weights) -> FV2VLightning:
    train_params = copy.deepcopy(demo_config["train_params"])
    train_params["loss_weights"].update(loss_weights)
    return FV2VLightning(
        copy.deepcopy(demo_config["model_params"]),
        train_params,
        perceptual_pretrained=False,
        resolution=64,
        generator_type=generator_type,
    )


# -- configuration and layout ------------------------------------------------------------------
def test_vox256_experiment_holds_the_official_values(vox_config: dict) -> None:
    assert vox_config["model_params"] == VOX256_MODEL_PARAMS
    assert vox_config["generator_type"] == "spade"
    train = vox_config["train_params"]
    assert train["loss_weights"] == {
        "generator_gan": 1,
        "discriminator_gan": 1,
        "feature_matching": [10, 10, 10, 10],
        "perceptual": [10, 10, 10, 10, 10],
        "equivariance_value": 10,
        "equivariance_jacobian": 0,
        "keypoint": 10,
        "headpose": 20,
        "expression": 5,
    }
    assert (train["num_epochs"], train["epoch_milestones"], train["batch_size"]) == (300, [180], 32)
    assert (train["gan_mode"], train["num_repeats"]) == ("hinge", 75)
    assert train["hopenet_snapshot"].endswith("/hopenet_robust_alpha1.pkl")
    assert {train[f"lr_{n}"] for n in NETWORKS} == {2.0e-4}


def test_our_networks_have_the_official_keys_and_shapes(vox_config: dict) -> None:
    networks = dict(zip(NETWORKS, build_networks(vox_config["model_params"], "spade"), strict=True))
    for name, module in networks.items():
        assert shapes(module) == LAYOUTS["vox-256"][name], name
    # the beta config: the original generator and a keypoint detector on the full image
    beta = copy.deepcopy(vox_config["model_params"])
    beta["kp_detector_params"]["scale_factor"] = 1
    del networks
    networks = dict(zip(NETWORKS, build_networks(beta, "original"), strict=True))
    for name, module in networks.items():
        assert shapes(module) == LAYOUTS["vox-256-beta"][name], name
    assert "down.weight" not in networks["kp_detector"].state_dict()


def official_file(path: Path, layout: dict, seed: int = 0) -> Path:
    """An official-layout checkpoint as ``Logger.save_cpk`` writes it: random tensors in every
    listed key, the four optimiser states and the epoch."""
    generator = torch.Generator().manual_seed(seed)
    checkpoint: dict = {}
    for network, keys in layout.items():
        checkpoint[network] = layout_state(keys, generator)
    for network in NETWORKS:
        checkpoint[f"optimizer_{network}"] = {
            "state": {},
            "param_groups": [{"lr": 2e-5, "betas": (0.5, 0.999), "params": [0, 1]}],
        }
    checkpoint["epoch"] = 299
    torch.save(checkpoint, path)
    return path


def test_official_checkpoint_imports_strictly_and_loads_for_animation_and_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    official = official_file(tmp_path / "00000299-checkpoint.pth.tar", LAYOUTS["vox-256"])
    out = tmp_path / "imported.ckpt"
    argv = ["import-checkpoint", "--method", "fv2v", "--official", str(official), "--out", str(out)]
    assert main([*argv, "--experiment", "fv2v_vox256"]) in (0, None)
    assert f"-> {out}" in capsys.readouterr().out
    source = torch.load(official, weights_only=True)
    written = torch.load(out, weights_only=True)
    assert written["imported_from"]["file"] == official.name and written["epoch"] == 299
    assert written["hyper_parameters"]["generator_type"] == "spade"
    expected = {f"{n}.{k}" for n in NETWORKS for k in LAYOUTS["vox-256"][n]}
    assert set(written["state_dict"]) == expected
    for network in NETWORKS:
        for key, value in source[network].items():
            assert torch.equal(written["state_dict"][f"{network}.{key}"], value), key
    del written
    animator = FV2VAnimator.from_checkpoint(out)
    assert animator.resolution == 256 and not animator.estimate_jacobian
    assert torch.equal(
        animator.generator.decoder.G_middle_5.conv_1.weight_orig,
        source["generator"]["decoder.G_middle_5.conv_1.weight_orig"],
    )
    assert torch.equal(
        animator.he_estimator.block7.b7_1.norm3.running_var,
        source["he_estimator"]["block7.b7_1.norm3.running_var"],
    )
    del animator
    module = FV2VLightning.load_from_checkpoint(out, perceptual_pretrained=False, strict=True)
    assert torch.equal(module.kp_detector.kp.weight, source["kp_detector"]["kp.weight"])
    assert module.discriminator.discs["1"].conv.weight_orig.shape == (1, 512, 1, 1)


def test_layout_errors_name_the_network_and_the_keys(tmp_path: Path, demo_config: dict) -> None:
    fomm = {
        network: {key: torch.zeros(shape) for key, shape in keys.items()}
        for network, keys in FOMM_LAYOUTS["vox-256"].items()
    }
    fomm_file = tmp_path / "vox-cpk.pth.tar"
    torch.save({**fomm, "epoch": 99}, fomm_file)
    with pytest.raises(CheckpointLayoutError) as error:
        import_official(fomm_file, tmp_path / "a.ckpt", experiment_model_config("fv2v_vox256"))
    message = str(error.value)
    assert message.startswith("vox-cpk.pth.tar: kp_detector does not match our KPDetector")
    assert "missing: predictor.conv.bias, predictor.conv.weight" in message
    assert "unexpected: jacobian.bias, jacobian.weight, predictor.decoder.up_blocks.0" in message
    assert (
        "shape: kp.bias (10,) != ours (15,), kp.weight (10, 35, 7, 7) != ours (15, 32, 3, 3, 3)"
        in message
    )

    # a file with an 'original' generator given to a 'spade' experiment, and a missing network
    kp_detector, he_estimator, generator, _ = build_networks(
        demo_config["model_params"], "original"
    )
    states = {
        "kp_detector": kp_detector.state_dict(),
        "he_estimator": he_estimator.state_dict(),
        "generator": generator.state_dict(),
    }
    original = tmp_path / "original.pth.tar"
    torch.save(states, original)
    wrong_generator = r"generator is the 'original' one \(--gen original\), the experiment builds"
    with pytest.raises(CheckpointLayoutError, match=wrong_generator + " the 'spade' one"):
        import_official(original, tmp_path / "b.ckpt", demo_config)
    del states["he_estimator"]
    torch.save(states, original)
    with pytest.raises(CheckpointLayoutError, match=r"no 'he_estimator' state dict"):
        import_official(
            original, tmp_path / "b.ckpt", {**demo_config, "generator_type": "original"}
        )
    assert not any(tmp_path.glob("*.ckpt"))  # nothing written on failure


def test_a_file_without_discriminator_imports_with_a_fresh_one(
    tmp_path: Path, demo_config: dict
) -> None:
    torch.manual_seed(3)
    kp_detector, he_estimator, generator, _ = build_networks(demo_config["model_params"])
    official = tmp_path / "no-disc.pth.tar"
    torch.save(
        {
            "kp_detector": kp_detector.state_dict(),
            "he_estimator": he_estimator.state_dict(),
            "generator": generator.state_dict(),
            "epoch": 4,
        },
        official,
    )
    with pytest.warns(RuntimeWarning, match="holds no 'discriminator'"):
        out = import_official(official, tmp_path / "x.ckpt", demo_config)
    written = torch.load(out, weights_only=True)["state_dict"]
    assert torch.equal(written["generator.fourth.weight"], generator.fourth.weight)
    assert "discriminator.discs.1.conv.weight_orig" in written


# -- keypoint and head-pose maths --------------------------------------------------------------
def test_headpose_degrees_are_the_expected_bin() -> None:
    logits = torch.full((3, 66), -1e4)
    logits[0, 0] = logits[1, 33] = logits[2, 65] = 0
    torch.testing.assert_close(headpose_pred_to_degree(logits), torch.tensor([-99.0, 0.0, 96.0]))
    # uniform logits: the mean bin 32.5 → 3·32.5 − 99
    assert headpose_pred_to_degree(torch.zeros(1, 66)).item() == pytest.approx(-1.5)


def test_rotation_matrix_is_pitch_yaw_roll_about_x_y_z() -> None:
    from scipy.spatial.transform import Rotation

    yaw, pitch, roll = (
        torch.tensor([30.0, -45.0]),
        torch.tensor([10.0, 5.0]),
        torch.tensor([-20.0, 60.0]),
    )
    rot = rotation_matrix(yaw, pitch, roll).double()
    for b in range(2):
        # intrinsic x-y-z: R_x(pitch) R_y(yaw) R_z(roll), degrees converted with π ≈ 3.14
        angles = [pitch[b].item(), yaw[b].item(), roll[b].item()]
        expected = Rotation.from_euler("XYZ", [a / 180 * 3.14 for a in angles]).as_matrix()
        np.testing.assert_allclose(rot[b].numpy(), expected, atol=1e-6)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(2, 3, 3).double())
    assert torch.linalg.det(rot).numpy() == pytest.approx([1.0, 1.0])


def test_keypoint_transformation_rotates_translates_and_adds_expression() -> None:
    torch.manual_seed(0)
    kp_canonical = {"value": torch.rand(1, 4, 3) * 2 - 1}
    logits = torch.full((2, 66), -1e4)
    logits[:, 33] = 0  # 0°
    logits_yaw = logits.clone()
    logits_yaw[1] = -1e4
    logits_yaw[1, 63] = 0  # 90°
    he = {
        "yaw": logits_yaw,
        "pitch": logits,
        "roll": logits,
        "t": torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]]),
        "exp": torch.arange(24, dtype=torch.float32).view(2, 12) / 100,
    }
    kp = keypoint_transformation(kp_canonical, he)["value"]
    exp = he["exp"].view(2, 4, 3)
    torch.testing.assert_close(kp[0], kp_canonical["value"][0] + he["t"][0] + exp[0])
    # yaw 90° (π ≈ 3.14) about y: (x, y, z) → (z, y, −x), up to sin/cos of 3.14/2
    theta = torch.tensor(3.14 / 2)
    x, y, z = kp_canonical["value"][0].unbind(-1)
    rotated = torch.stack(
        [theta.cos() * x + theta.sin() * z, y, -theta.sin() * x + theta.cos() * z], dim=-1
    )
    torch.testing.assert_close(kp[1], rotated + exp[1])
    fixed = keypoint_transformation(kp_canonical, he, yaw=90.0)["value"]
    torch.testing.assert_close(fixed[0], rotated + he["t"][0] + exp[0])


def test_he_estimator_takes_yaw_from_fc_roll_as_upstream() -> None:
    he = HEEstimator(
        block_expansion=8, feature_channel=4, num_kp=3, image_channel=3, max_features=32
    )
    with torch.no_grad():
        for layer, bin_index in ((he.fc_roll, 40), (he.fc_yaw, 20), (he.fc_pitch, 33)):
            layer.weight.zero_()
            layer.bias.fill_(-1e4)
            layer.bias[bin_index] = 0
        out = he.eval()(torch.rand(2, 3, 64, 64))
    degrees = {name: headpose_pred_to_degree(out[name]) for name in ("yaw", "pitch", "roll")}
    torch.testing.assert_close(degrees["yaw"], torch.full((2,), 21.0))  # 3·40 − 99
    torch.testing.assert_close(degrees["roll"], torch.full((2,), -39.0))  # 3·20 − 99
    torch.testing.assert_close(degrees["pitch"], torch.zeros(2))
    assert out["exp"].shape == (2, 9) and out["t"].shape == (2, 3)


def test_movement_scale_uses_the_3d_hull_volume() -> None:
    cube = torch.tensor(
        [[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)]
    ).unsqueeze(0)
    # volumes 1 and 8: sqrt(1)/sqrt(8) (a 2-D hull would give sqrt(1)/sqrt(4))
    assert movement_scale({"value": cube}, {"value": cube * 2}) == pytest.approx(8**-0.5)
    flat = {"value": cube * torch.tensor([1.0, 1.0, 0.0])}
    with pytest.warns(RuntimeWarning, match="degenerate"):
        assert movement_scale(flat, {"value": cube}) == 1.0
    kp_source, kp_initial = {"value": cube * 0.5}, {"value": cube}
    kp_driving = {"value": cube + 0.2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = normalize_kp(
            kp_source, kp_driving, kp_initial, adapt_movement_scale=True, use_relative_movement=True
        )
    torch.testing.assert_close(out["value"], cube * 0.5 + 0.2 * math.sqrt(1 / 8))
    assert normalize_kp(kp_source, kp_driving, kp_initial)["value"] is kp_driving["value"]


# -- losses ------------------------------------------------------------------------------------
def test_keypoint_prior_matches_the_official_double_loop() -> None:
    torch.manual_seed(1)
    kp = torch.rand(3, 6, 3) * 0.6 - 0.3
    expected = 0.0
    for i in range(6):  # modules/model.py, GeneratorFullModel: every ordered pair, i = j included
        for j in range(6):
            dist = torch.nn.functional.pairwise_distance(kp[:, i], kp[:, j], p=2, keepdim=True)
            margin = 0.1 - dist**2
            expected = expected + (margin * (margin > 0)).mean()
    expected = expected + torch.abs(kp[:, :, -1].mean(-1) - 0.33).mean()
    torch.testing.assert_close(L.keypoint_prior_loss(kp), expected)
    far = torch.tensor([[[0.0, 0.0, 0.33], [1.0, 0.0, 0.33]]])
    assert L.keypoint_prior_loss(far).item() == pytest.approx(2 * 0.1, abs=1e-6)  # i = j only


def test_hinge_gan_losses() -> None:
    real = {"prediction_map_1": torch.tensor([2.0, 0.5, -1.0])}
    fake = {"prediction_map_1": torch.tensor([-2.0, 0.0, 1.0])}
    # real: mean(-min(d − 1, 0)) = (0 + 0.5 + 2)/3; fake: mean(-min(−d − 1, 0)) = (0 + 1 + 2)/3
    value = L.discriminator_gan_loss(real, fake, [1], 1.0, "hinge")
    assert value.item() == pytest.approx(2.5 / 3 + 3 / 3)
    assert L.generator_gan_loss(fake, [1], 2.0, "hinge").item() == pytest.approx(2 * 1 / 3)
    ls = L.discriminator_gan_loss(real, fake, [1], 1.0, "ls")
    assert ls.item() == pytest.approx(
        ((1 - real["prediction_map_1"]) ** 2 + fake["prediction_map_1"] ** 2).mean().item()
    )
    with pytest.raises(ValueError, match="gan_mode"):
        L.generator_gan_loss(fake, [1], 1.0, "wgan")


# -- training ----------------------------------------------------------------------------------
def test_training_steps_update_weights_with_finite_losses(demo_config: dict) -> None:
    torch.manual_seed(0)
    module = demo_module(demo_config)
    trainer, _, before = fit_pairs(module, torch.rand(4, 3, 64, 64), batch_size=2)
    assert_training_losses(
        trainer,
        (
            "perceptual",
            "gen_gan",
            "feature_matching",
            "equivariance_value",
            "keypoint",
            "expression",
            "disc_gan",
        ),
        outside_total=("disc_gan",),
    )
    after = module.state_dict()
    for key in (
        "generator.decoder.conv_img.weight",
        "generator.dense_motion_network.mask.weight",
        "kp_detector.kp.weight",
        "he_estimator.fc_exp.weight",
        "discriminator.discs.1.conv.bias",
    ):
        assert not torch.equal(before[key], after[key]), key
    assert not any("vgg" in key or "hopenet" in key for key in after)
    opt_discriminator = trainer.optimizers[1]
    assert all(opt_discriminator.state[p]["step"] == 2 for p in module.discriminator.parameters())


def test_headpose_loss_needs_hopenet_weights(
    tmp_path: Path, demo_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from talking_heads import weights

    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.delenv(weights.ALLOW_UNVERIFIED_ENV, raising=False)
    assert weights.WEIGHTS.get("hopenet").filename == "hopenet_robust_alpha1.pkl"
    module = demo_module(demo_config, headpose=20)  # the teacher is loaded on first use
    module.train_params["hopenet_snapshot"] = None
    with pytest.raises(
        weights.MissingWeightsError, match=r"hopenet_robust_alpha1\.pkl .*headpose=0"
    ):
        module.hopenet  # noqa: B018
    torch.manual_seed(0)
    torch.save(Hopenet().state_dict(), tmp_path / "hopenet_robust_alpha1.pkl")
    with pytest.raises(weights.ChecksumMismatchError, match="no published checksum"):
        module.hopenet  # noqa: B018
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
    with pytest.warns(UserWarning, match="UNVERIFIED WEIGHTS"):
        teacher = module.hopenet
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    batch = {"source": torch.rand(2, 3, 64, 64), "driving": torch.rand(2, 3, 64, 64)}
    losses, _ = module.generator_losses(batch)
    assert torch.isfinite(losses["headpose"]) and losses["headpose"] > 0


# -- animation ---------------------------------------------------------------------------------
def official_loop(
    animator: FV2VAnimator,
    source: torch.Tensor,
    driving: torch.Tensor,
    relative: bool,
    free_view: FreeView | None = None,
) -> torch.Tensor:
    """demo.py's make_animation: one frame at a time, the full generator each time."""
    kp_detector, he_estimator, generator = (
        animator.kp_detector,
        animator.he_estimator,
        animator.generator,
    )
    angles = {} if free_view is None else vars(free_view)
    predictions = []
    with torch.no_grad():
        kp_canonical = kp_detector(source[None])
        kp_source = keypoint_transformation(kp_canonical, he_estimator(source[None]))
        kp_initial = keypoint_transformation(kp_canonical, he_estimator(driving[:1]))
        for frame in driving:
            kp_driving = keypoint_transformation(kp_canonical, he_estimator(frame[None]), **angles)
            kp_norm = normalize_kp(
                kp_source,
                kp_driving,
                kp_initial,
                adapt_movement_scale=relative,
                use_relative_movement=relative,
            )
            out = generator(source[None], kp_source=kp_source, kp_driving=kp_norm)
            predictions.append(out["prediction"])
    return torch.cat(predictions)


def test_batched_animation_equals_the_per_frame_loop(tmp_path: Path, demo_config: dict) -> None:
    torch.manual_seed(0)
    module = demo_module(demo_config)
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(module, DataLoader(pairs(torch.rand(2, 3, 64, 64)), batch_size=2))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    animator = FV2VAnimator.from_checkpoint(path)
    assert animator.resolution == 64
    assert not any(net.training for net in animator.networks.values())
    source, driving = torch.rand(3, 64, 64), torch.rand(5, 3, 64, 64)

    relative = official_loop(animator, source, driving, relative=True)
    absolute = official_loop(animator, source, driving, relative=False)
    assert_batched_matches(animator, source, driving, relative, absolute, (3, 1), differ=1e-4)

    view = FreeView(yaw=20, pitch=None, roll=0)
    free = official_loop(animator, source, driving, relative=True, free_view=view)
    batched = animator.animate(source, driving, batch_size=2, free_view=view)
    torch.testing.assert_close(batched, free, atol=1e-5, rtol=0)
    assert (free - relative).abs().max() > 1e-4
    assert animator._free_view is None  # the fixed view applies to that call only
