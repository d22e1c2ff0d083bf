"""MRAA: official state-dict layout and import, region maths, training and batched animation.

The official layouts (``tests/data/official_layouts/mraa.json``) list every state-dict key and
shape of the official modules (snap-research/articulated-animation 9b5de78: Generator,
RegionPredictor, BGMotionPredictor, AVDNetwork) built from ``config/vox256.yaml``.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import pytest
import torch

from motion_testing import (
    assert_avd_animation_matches_loop,
    assert_reconstruction_uses_background,
    assert_training_losses,
    config_fixtures,
    fit_pairs,
    layout_state,
    official_layouts,
    quiet_trainer,
    shapes,
)
from official_params import MRAA_VOX256 as VOX256_MODEL_PARAMS
from talking_heads.cli import main
from talking_heads.models import METHODS
from talking_heads.models.checkpoints import CheckpointLayoutError
from talking_heads.models.motion.blocks import make_coordinate_grid
from talking_heads.models.mraa.animate import MRAAAnimator, get_animation_region_params
from talking_heads.models.mraa.module import MRAALightning, random_scale
from talking_heads.models.mraa.networks import (
    PixelwiseFlowPredictor,
    RegionPredictor,
    build_networks,
    covariance_sqrt,
    region2gaussian,
)

LAYOUT = official_layouts("mraa")["vox256"]
FOMM_LAYOUT = official_layouts("fomm")["vox-256"]
NETWORKS = ("generator", "region_predictor", "bg_predictor", "avd_network")


vox_config, demo_config = config_fixtures("mraa_vox256", "mraa_demo")


@pytest.fixture(scope="module")
def vox_networks(vox_config) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return build_networks(vox_config["model_params"])


def official_file(path: Path, *, avd: bool = True, seed: int = 0) -> Path:
    """A file laid out as upstream's ``Logger.save_cpk``: random tensors in every listed key,
    ``num_batches_tracked`` ints, optimiser states and the epoch. ``avd``: as ``train_avd``
    writes it (the released files), else as the reconstruction stage (no AVD network)."""
    generator = torch.Generator().manual_seed(seed)
    checkpoint: dict = {}
    for network in NETWORKS if avd else NETWORKS[:3]:
        checkpoint[network] = layout_state(LAYOUT[network], generator)
    optimizer = {"state": {}, "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": []}]}
    checkpoint["optimizer_reconstruction"] = optimizer
    if avd:
        checkpoint.update(optimizer_avd=optimizer, epoch_avd=29)
    else:
        checkpoint["epoch_reconstruction"] = 99
    torch.save(checkpoint, path)
    return path


# -- layout and import --------------------------------------------------------------------


def test_vox256_experiment_holds_the_official_values(vox_config) -> None:
    assert vox_config["model_params"] == VOX256_MODEL_PARAMS
    train = vox_config["train_params"]
    assert (train["num_epochs"], train["num_repeats"], train["batch_size"]) == (100, 75, 14)
    assert (train["lr"], train["epoch_milestones"]) == (2e-4, [60, 90])
    assert train["loss_weights"] == {
        "perceptual": [10, 10, 10, 10, 10],
        "equivariance_shift": 10,
        "equivariance_affine": 10,
    }
    assert train["scales"] == [1, 0.5, 0.25, 0.125]
    avd = vox_config["train_avd_params"]
    assert (avd["num_epochs"], avd["num_repeats"], avd["batch_size"]) == (30, 2000, 256)
    assert (avd["lr"], avd["epoch_milestones"], avd["random_scale"]) == (1e-3, [20, 25], 0.25)
    assert vox_config["stage"] == "reconstruction"


def test_our_networks_have_the_official_keys_and_shapes(vox_networks) -> None:
    assert set(vox_networks) == set(LAYOUT)
    for name, module in vox_networks.items():
        assert shapes(module) == LAYOUT[name], name
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in vox_networks.items()}
    assert counts == {
        "generator": 45_575_391,
        "region_predictor": 14_146_728,
        "bg_predictor": 6_282_438,
        "avd_network": 2_290_620,
    }


def test_official_checkpoint_imports_strictly_and_loads_for_animation_and_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    official = official_file(tmp_path / "vox256.pth")
    out = tmp_path / "imported.ckpt"
    argv = ["import-checkpoint", "--method", "mraa", "--official", str(official), "--out", str(out)]
    assert main(argv) in (0, None)  # the registry's default experiment, mraa_vox256
    assert f"-> {out}" in capsys.readouterr().out
    source = torch.load(official, weights_only=True)
    written = torch.load(out, weights_only=True)
    assert written["imported_from"]["file"] == "vox256.pth" and written["epoch"] == 29
    expected_keys = {f"{n}.{k}" for n in NETWORKS for k in LAYOUT[n]}
    assert set(written["state_dict"]) == expected_keys
    for network in NETWORKS:
        for key, value in source[network].items():
            assert torch.equal(written["state_dict"][f"{network}.{key}"], value), key

    animator = MRAAAnimator.from_checkpoint(out)
    assert animator.resolution == 256 and not animator.avd_network.training
    assert torch.equal(
        animator.region_predictor.regions.weight, source["region_predictor"]["regions.weight"]
    )
    assert torch.equal(
        animator.avd_network.decoder[1].running_var, source["avd_network"]["decoder.1.running_var"]
    )
    module = MRAALightning.load_from_checkpoint(out, perceptual_pretrained=False, strict=True)
    assert torch.equal(module.bg_predictor.fc.bias, source["bg_predictor"]["fc.bias"])
    assert module.hparams["train_avd_params"]["lr"] == 1e-3


def test_a_reconstruction_stage_file_imports_with_a_fresh_avd_network(tmp_path: Path) -> None:
    official = official_file(tmp_path / "00000099-cpk-reconstruction.pth", avd=False)
    with pytest.warns(RuntimeWarning, match="holds no 'avd_network': a freshly initialised"):
        out = METHODS.get("mraa").import_official(official, tmp_path / "a.ckpt")
    written = torch.load(out, weights_only=True)
    assert written["epoch"] == 99
    state = written["state_dict"]
    assert {k for k in state if k.startswith("avd_network.")} == {
        f"avd_network.{k}" for k in LAYOUT["avd_network"]
    }
    source = torch.load(official, weights_only=True)
    assert torch.equal(state["bg_predictor.fc.weight"], source["bg_predictor"]["fc.weight"])
    # a freshly initialised AVD network: untouched BatchNorm statistics
    assert torch.equal(state["avd_network.decoder.1.running_var"], torch.ones(1024))
    assert int(state["avd_network.id_encoder.1.num_batches_tracked"]) == 0
    assert MRAAAnimator.from_checkpoint(out).avd_network.num_regions == 10
    # the official file also loads directly, as upstream's demo.py loads it
    direct = MRAAAnimator.from_official(official)
    assert torch.equal(direct.generator.final.weight, source["generator"]["final.weight"])


def test_a_layout_mismatch_names_the_network_and_the_keys(tmp_path: Path) -> None:
    mraa = METHODS.get("mraa")
    fomm = {  # a first-order-model vox-cpk layout (expanded zeros keep the file small)
        network: {key: torch.zeros(()).expand(shape) for key, shape in state.items()}
        for network, state in FOMM_LAYOUT.items()
    }
    torch.save({**fomm, "epoch": 99}, tmp_path / "vox-cpk.pth.tar")
    with pytest.raises(CheckpointLayoutError) as error:
        mraa.import_official(tmp_path / "vox-cpk.pth.tar", tmp_path / "a.ckpt")
    assert str(error.value) == f"{tmp_path / 'vox-cpk.pth.tar'} is a fomm checkpoint, not mraa"
    message = str(error.value.__cause__)  # the layout check that found it
    assert message.startswith("vox-cpk.pth.tar: generator does not match our Generator: ")
    assert "75 missing: pixelwise_flow_predictor.down.weight, " in message
    assert "75 unexpected: dense_motion_network.down.weight, " in message

    no_regions = {
        "generator": {k: torch.zeros(()).expand(s) for k, s in LAYOUT["generator"].items()},
        "kp_detector": fomm["kp_detector"],
    }
    torch.save(no_regions, tmp_path / "no-regions.pth")
    with pytest.raises(CheckpointLayoutError) as error:  # the networks of a DaGAN file
        mraa.import_official(tmp_path / "no-regions.pth", tmp_path / "b.ckpt")
    assert str(error.value).endswith("no-regions.pth is a dagan checkpoint, not mraa")
    assert str(error.value.__cause__) == (
        "no-regions.pth: no 'region_predictor' state dict (it holds ['generator', 'kp_detector'])"
    )
    assert not any(tmp_path.glob("*.ckpt"))  # nothing written on failure


# -- region maths -------------------------------------------------------------------------


def test_pca_affine_of_a_known_gaussian() -> None:
    """The heatmap of N(μ, Σ) gives shift μ and affine U·diag(√s) with A·Aᵀ = Σ, whose
    columns are Σ's principal axes scaled by the standard deviations."""
    size = 129
    angle = math.radians(30)
    rotation = torch.tensor(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    stds = torch.tensor([0.2, 0.08])
    covar = rotation @ torch.diag(stds**2) @ rotation.T
    mean = torch.tensor([0.1, -0.15])
    heatmap = region2gaussian(mean.view(1, 1, 2), covar.view(1, 1, 2, 2), (size, size))
    heatmap = heatmap / heatmap.sum()
    predictor = RegionPredictor(8, 1, 3, 16, 1, 0.1, estimate_affine=True, pca_based=True)
    params = predictor.region2affine(heatmap.double())
    torch.testing.assert_close(params["shift"][0, 0], mean.double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(params["covar"][0, 0], covar.double(), atol=1e-5, rtol=0)

    affine, _, d = covariance_sqrt(params["covar"])
    affine = affine[0, 0].double()
    torch.testing.assert_close(affine @ affine.T, covar.double(), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.diagonal(d[0, 0]).double(), stds.double(), atol=1e-4, rtol=0)
    # the first column is the major axis (30°) scaled by its standard deviation, up to sign
    major = affine[:, 0] / affine[:, 0].norm()
    assert abs(float(major @ rotation[:, 0].double())) == pytest.approx(1.0, abs=1e-6)
    assert float(affine[:, 0].norm()) == pytest.approx(0.2, abs=1e-4)


def test_region2gaussian_is_the_covariance_gaussian() -> None:
    covar = torch.tensor([[0.04, 0.01], [0.01, 0.02]])
    centre = torch.tensor([0.25, -0.5])
    heatmap = region2gaussian(centre.view(1, 1, 2), covar.view(1, 1, 2, 2), (9, 9))[0, 0]
    grid = make_coordinate_grid((9, 9))
    z = grid[6, 1] - centre  # the point (x, y) = (-0.75, 0.5)
    expected = math.exp(-0.5 * float(z @ torch.linalg.inv(covar) @ z))
    assert heatmap[6, 1].item() == pytest.approx(expected, rel=1e-5)
    assert heatmap.max().item() <= 1.0
    isotropic = region2gaussian(centre.view(1, 1, 2), 0.01, (9, 9))[0, 0]
    assert isotropic[6, 1].item() == pytest.approx(math.exp(-0.5 * float(z @ z) / 0.01), rel=1e-5)


@pytest.mark.parametrize("revert_axis_swap", [True, False])
def test_revert_axis_swap_undoes_an_svd_sign_flip(revert_axis_swap: bool) -> None:
    """Source and driving regions differing only by the SVD's sign ambiguity (U → −U): with
    ``revert_axis_swap`` the region's motion is the pure shift, without it a point reflection."""
    flow = PixelwiseFlowPredictor(8, 1, 16, num_regions=1, num_channels=3)
    flow.revert_axis_swap = revert_axis_swap
    affine = torch.tensor([[[[0.2, -0.05], [0.1, 0.15]]]])
    source = {"shift": torch.tensor([[[0.3, 0.1]]]), "affine": affine}
    driving = {"shift": torch.tensor([[[-0.2, 0.0]]]), "affine": -affine}
    motions = flow.create_sparse_motions(torch.zeros(1, 3, 5, 5), driving, source)
    grid = make_coordinate_grid((5, 5))
    torch.testing.assert_close(motions[0, 0], grid)  # the background: identity without bg motion
    offset = grid - driving["shift"][0, 0]
    expected = source["shift"][0, 0] + (offset if revert_axis_swap else -offset)
    torch.testing.assert_close(motions[0, 1], expected)

    # a background affine motion acts on the identity grid (homogeneous coordinates)
    bg = torch.tensor([[[1.0, 0.0, 0.1], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]]])
    moved = flow.create_sparse_motions(torch.zeros(1, 3, 5, 5), driving, source, bg)[0, 0]
    torch.testing.assert_close(moved, grid * torch.tensor([1.0, 0.5]) + torch.tensor([0.1, 0.0]))


def test_relative_region_params_and_random_scale() -> None:
    square = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    eye = torch.eye(2).expand(1, 4, 2, 2)
    source = {"shift": square * 0.5, "affine": eye * 2, "covar": eye * 0.1}
    initial = {"shift": square, "affine": eye.clone(), "covar": eye * 0.2}
    driving = {"shift": square + 0.2, "affine": eye * 3, "covar": eye * 0.3}
    new = get_animation_region_params(source, driving, initial, mode="relative")
    # hull areas 0.25 and 1 → scale 0.5; affine A_drv·A_drv0⁻¹·A_src = 3I·I·2I
    torch.testing.assert_close(new["shift"], square * 0.5 + 0.1)
    torch.testing.assert_close(new["affine"], eye * 6)
    assert new["covar"] is driving["covar"]  # upstream keeps the driving covariances
    unscaled = get_animation_region_params(
        source, driving, initial, mode="relative", adapt_movement_scale=False
    )
    torch.testing.assert_close(unscaled["shift"], square * 0.5 + 0.2)
    standard = get_animation_region_params(source, driving, initial, mode="standard")
    assert standard["shift"] is driving["shift"] and standard["affine"] is driving["affine"]
    with pytest.raises(ValueError, match="mode 'avd' needs the AVD network"):
        get_animation_region_params(source, driving, initial, mode="avd")

    torch.manual_seed(3)
    scaled = random_scale({"shift": square.expand(2, 4, 2), "affine": eye.expand(2, 4, 2, 2)}, 0.25)
    factors = scaled["affine"][:, 0].diagonal(dim1=-2, dim2=-1)  # (2, 2): per sample, per axis
    assert ((factors >= 0.75) & (factors <= 1.25)).all()
    torch.testing.assert_close(scaled["shift"], square * factors[:, None, :])


# -- training -------------------------------------------------------------------------------


def demo_module(demo_config: dict, **kwargs) -> MRAALightning:
    return MRAALightning(
        demo_config["model_params"],
        demo_config["train_params"],
        perceptual_pretrained=False,
        resolution=64,
        train_avd_params=demo_config["train_avd_params"],
        **kwargs,
    )


def test_training_steps_update_weights_with_finite_losses(demo_config, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = demo_module(demo_config)
    trainer, loader, before = fit_pairs(module, torch.rand(4, 3, 64, 64), batch_size=2)
    assert_training_losses(
        trainer,
        [
            "perceptual",
            "equivariance_shift",
            "equivariance_affine",
        ],
        positive=True,
    )
    after = module.state_dict()
    for key in (
        "generator.final.weight",
        "region_predictor.regions.weight",
        "bg_predictor.fc.weight",
    ):
        assert not torch.equal(before[key], after[key]), key
    assert torch.equal(
        before["avd_network.decoder.0.weight"], after["avd_network.decoder.0.weight"]
    )
    assert not any("vgg" in key for key in after)
    (metrics,) = trainer.validate(module, loader, verbose=False)
    assert 0 < metrics["val/l1"] < 1

    # stage 2: the AVD network starts from the reconstruction weights and alone is trained
    path = tmp_path / "reconstruction.ckpt"
    trainer.save_checkpoint(path)
    avd = demo_module(demo_config, stage="avd", init_checkpoint=str(path))
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(avd, loader)
    assert {"train/rec_shift", "train/rec_affine"} <= set(trainer.callback_metrics)
    assert all(torch.isfinite(v) for v in trainer.callback_metrics.values())
    state = avd.state_dict()
    for key in ("generator.final.weight", "region_predictor.regions.weight"):
        assert torch.equal(state[key], after[key]), key
    assert not torch.equal(
        state["avd_network.decoder.0.weight"], after["avd_network.decoder.0.weight"]
    )
    # as upstream, the frozen region predictor runs in training mode: its BatchNorm statistics move
    key = "region_predictor.predictor.encoder.down_blocks.0.norm.running_mean"
    assert not torch.equal(state[key], after[key])


def test_avd_learning_rate_follows_upstreams_per_epoch_schedule(demo_config) -> None:
    params = {**demo_config["train_avd_params"], "epoch_milestones": [20, 25], "lr": 1e-3}
    module = demo_module(demo_config, stage="avd")
    module.train_avd_params = params
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {
        id(p) for p in module.avd_network.parameters()
    }
    for epoch in range(30):
        # upstream: scheduler.step(epoch) after epoch `epoch`, i.e. the closed form at epoch − 1
        upstream = 1e-3 * 0.1 ** bisect.bisect_right([20, 25], epoch - 1) if epoch else 1e-3
        assert scheduler.get_last_lr()[0] == pytest.approx(upstream), epoch
        optimizer.step()  # no gradients: nothing moves
        scheduler.step()


# -- animation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_animator(demo_config, tmp_path_factory) -> MRAAAnimator:
    """Demo-sized networks with non-trivial BatchNorm statistics and background motion, and
    an AVD head that outputs well-conditioned regions (0.3·I affines, as a trained one would;
    at initialisation it gives near-singular affines whose inverses amplify round-off)."""
    torch.manual_seed(0)
    module = demo_module(demo_config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                n = layer.num_features
                layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                layer.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
        module.bg_predictor.fc.weight.normal_(0, 0.05, generator=generator)
        avd_head = module.avd_network.decoder[-1]
        avd_head.weight.mul_(0.1)
        avd_head.bias.copy_(torch.tensor([0.0, 0.0, 0.3, 0.0, 0.0, 0.3]).repeat(5))
    path = tmp_path_factory.mktemp("mraa") / "demo.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return MRAAAnimator.from_checkpoint(path)


def smooth_frames(n: int) -> torch.Tensor:
    """Random smooth 64² frames (4×4 noise, bilinear): like video frames, unlike per-pixel
    noise, whose gradients turn the float32 round-off of batched convolutions (≈1e-7 in the
    flow) into warping differences above 1e-5."""
    noise = torch.rand(n, 3, 4, 4)
    return torch.nn.functional.interpolate(noise, size=(64, 64), mode="bilinear")


def official_loop(
    animator: MRAAAnimator, source: torch.Tensor, driving: torch.Tensor, mode: str
) -> torch.Tensor:
    """demo.py's make_animation (and reconstruction.py for ``reconstruction``): one frame at a
    time, the full generator each time."""
    region_predictor, generator = animator.region_predictor, animator.generator
    predictions = []
    with torch.no_grad():
        source_region_params = region_predictor(source[None])
        initial = region_predictor(driving[:1])
        for frame in driving:
            driving_region_params = region_predictor(frame[None])
            bg_params = None
            if mode == "reconstruction":
                new_region_params = driving_region_params
                bg_params = animator.bg_predictor(source[None], frame[None])
            else:
                new_region_params = get_animation_region_params(
                    source_region_params,
                    driving_region_params,
                    initial,
                    mode=mode,
                    avd_network=animator.avd_network,
                )
            out = generator(
                source[None],
                source_region_params=source_region_params,
                driving_region_params=new_region_params,
                bg_params=bg_params,
            )
            predictions.append(out["prediction"])
    return torch.cat(predictions)


def test_batched_animation_equals_the_per_frame_loop(demo_animator) -> None:
    assert_avd_animation_matches_loop(demo_animator, official_loop, smooth_frames)


def test_reconstruction_uses_the_background_motion(demo_animator) -> None:
    assert_reconstruction_uses_background(demo_animator, official_loop, smooth_frames)
