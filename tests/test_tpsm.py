"""TPSM: official state-dict layout and import, thin-plate-spline maths, training and batched
animation.

The official layouts (``tests/data/official_layouts/tpsm.json``) list every state-dict key and
shape of the official modules (yoyo-nb/Thin-Plate-Spline-Motion-Model c616878:
InpaintingNetwork, KPDetector, DenseMotionNetwork, BGMotionPredictor, AVDNetwork) built from
``config/vox-256.yaml``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

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
from official_params import TPSM_VOX256 as VOX256_MODEL_PARAMS
from talking_heads.cli import main
from talking_heads.config import experiment_model_config
from talking_heads.models import METHODS
from talking_heads.models.checkpoints import CheckpointLayoutError
from talking_heads.models.motion.blocks import make_coordinate_grid
from talking_heads.models.tpsm.animate import TPSMAnimator, animation_keypoints
from talking_heads.models.tpsm.checkpoint import import_official
from talking_heads.models.tpsm.module import (
    GRAD_CLIP_MAX_NORM,
    TPSMLightning,
    dropout_probability,
    random_scale,
)
from talking_heads.models.tpsm.networks import (
    DenseMotionNetwork,
    KeypointTPS,
    RandomTPS,
    build_networks,
    dropout_softmax,
)

LAYOUT = official_layouts("tpsm")["vox-256"]
FOMM_LAYOUT = official_layouts("fomm")["vox-256"]
NETWORKS = ("inpainting_network", "dense_motion_network", "kp_detector", "bg_predictor")


vox_config, demo_config = config_fixtures("tpsm_vox256", "tpsm_demo")


def official_file(path: Path, *, avd: bool = True, seed: int = 0) -> Path:
    """A file laid out as upstream's ``Logger.save_cpk``: every network of ``train.py`` after
    ``bg_start`` (random tensors, ``num_batches_tracked`` ints), both optimiser states and the
    epoch; ``avd``: also the AVD network and its optimiser, as ``train_avd.py`` writes them."""
    generator = torch.Generator().manual_seed(seed)
    checkpoint: dict = {network: layout_state(LAYOUT[network], generator) for network in NETWORKS}
    optimizer = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
        "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "weight_decay": 1e-4, "params": [0]}],
    }
    checkpoint.update(optimizer=optimizer, optimizer_bg_predictor=optimizer, epoch=99)
    if avd:
        checkpoint.update(avd_network=layout_state(LAYOUT["avd_network"], generator))
        checkpoint.update(optimizer_avd=optimizer)
    torch.save(checkpoint, path)
    return path


# -- layout and import --------------------------------------------------------------------


def test_vox256_experiment_holds_the_official_values(vox_config) -> None:
    assert vox_config["model_params"] == VOX256_MODEL_PARAMS
    train = vox_config["train_params"]
    assert (train["num_epochs"], train["num_repeats"], train["batch_size"]) == (100, 75, 28)
    assert (train["lr_generator"], train["epoch_milestones"]) == (2e-4, [70, 90])
    assert train["loss_weights"] == {
        "perceptual": [10, 10, 10, 10, 10],
        "equivariance_value": 10,
        "warp_loss": 10,
        "bg": 10,
    }
    assert (train["dropout_epoch"], train["dropout_maxp"], train["dropout_startp"]) == (
        35,
        0.3,
        0.1,
    )
    assert (train["dropout_inc_epoch"], train["bg_start"]) == (10, 10)
    assert train["transform_params"] == {"sigma_affine": 0.05, "sigma_tps": 0.005, "points_tps": 5}
    avd = vox_config["train_avd_params"]
    assert (avd["num_epochs"], avd["num_repeats"], avd["batch_size"]) == (200, 300, 256)
    assert (avd["lr"], avd["epoch_milestones"], avd["random_scale"]) == (1e-3, [140, 180], 0.25)
    assert vox_config["stage"] == "reconstruction"


def test_our_networks_have_the_official_keys_and_shapes(vox_config) -> None:
    torch.manual_seed(0)
    networks = build_networks(vox_config["model_params"])
    assert set(networks) == set(LAYOUT)
    for name, module in networks.items():
        assert shapes(module) == LAYOUT[name], name
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in networks.items()}
    assert counts == {
        "inpainting_network": 24_737_283,
        "kp_detector": 11_227_812,
        "dense_motion_network": 37_941_397,
        "bg_predictor": 11_188_998,
        "avd_network": 2_583_652,
    }
    # the background predictor starts at the identity affine
    bg = networks["bg_predictor"].eval()
    torch.testing.assert_close(
        bg(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))[0], torch.eye(3)
    )


def test_official_checkpoint_imports_strictly_and_loads_for_animation_and_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    official = official_file(tmp_path / "vox.pth.tar")
    out = tmp_path / "imported.ckpt"
    argv = ["import-checkpoint", "--method", "tpsm", "--official", str(official), "--out", str(out)]
    assert main(argv) in (0, None)  # the registry's default experiment, tpsm_vox256
    assert f"-> {out}" in capsys.readouterr().out
    source = torch.load(official, weights_only=True)
    written = torch.load(out, weights_only=True)
    assert written["imported_from"]["file"] == "vox.pth.tar" and written["epoch"] == 99
    networks = (*NETWORKS, "avd_network")
    assert set(written["state_dict"]) == {f"{n}.{k}" for n in networks for k in LAYOUT[n]}
    for network in networks:
        for key, value in source[network].items():
            assert torch.equal(written["state_dict"][f"{network}.{key}"], value), key

    animator = TPSMAnimator.from_checkpoint(out)
    assert animator.resolution == 256 and not animator.kp_detector.training
    assert torch.equal(
        animator.kp_detector.fg_encoder.fc.weight, source["kp_detector"]["fg_encoder.fc.weight"]
    )
    assert torch.equal(
        animator.bg_predictor.bg_encoder.bn1.running_var,
        source["bg_predictor"]["bg_encoder.bn1.running_var"],
    )
    assert torch.equal(
        animator.avd_network.decoder[1].running_mean,
        source["avd_network"]["decoder.1.running_mean"],
    )
    module = TPSMLightning.load_from_checkpoint(out, perceptual_pretrained=False, strict=True)
    assert torch.equal(
        module.dense_motion_network.occlusion[3].weight,
        source["dense_motion_network"]["occlusion.3.weight"],
    )
    assert module.hparams["train_avd_params"]["lr"] == 1e-3


def test_an_early_checkpoint_imports_with_fresh_background_and_avd_networks(
    tmp_path: Path,
) -> None:
    """Before ``bg_start`` upstream saves no background predictor, before ``train_avd`` no
    AVD network: both are written freshly initialised, with a warning each."""
    demo = experiment_model_config("tpsm_demo")
    ours = build_networks(demo["model_params"])
    official = {name: ours[name].state_dict() for name in NETWORKS[:3]}
    torch.save({**official, "epoch": 4}, tmp_path / "00000004-checkpoint.pth.tar")
    with pytest.warns(RuntimeWarning) as caught:
        out = METHODS.get("tpsm").import_official(
            tmp_path / "00000004-checkpoint.pth.tar", tmp_path / "a.ckpt", "tpsm_demo"
        )
    assert sorted(str(w.message) for w in caught) == [
        "00000004-checkpoint.pth.tar holds no 'avd_network': a freshly initialised one is written",
        "00000004-checkpoint.pth.tar holds no 'bg_predictor': a freshly initialised one is written",
    ]
    state = torch.load(out, weights_only=True)["state_dict"]
    assert state["bg_predictor.bg_encoder.fc.bias"].tolist() == [1, 0, 0, 0, 1, 0]
    assert int(state["avd_network.id_encoder.1.num_batches_tracked"]) == 0
    assert torch.equal(
        state["kp_detector.fg_encoder.fc.weight"], ours["kp_detector"].fg_encoder.fc.weight
    )
    # the official file also loads directly, as upstream's demo.py loads it
    direct = TPSMAnimator.from_official(
        tmp_path / "00000004-checkpoint.pth.tar", model_params=demo["model_params"]
    )
    assert torch.equal(direct.inpainting_network.final.bias, ours["inpainting_network"].final.bias)


def test_a_layout_mismatch_names_the_network_and_the_keys(tmp_path: Path) -> None:
    tpsm = METHODS.get("tpsm")
    fomm = {  # a first-order-model vox-cpk layout (expanded zeros keep the file small)
        network: {key: torch.zeros(()).expand(shape) for key, shape in state.items()}
        for network, state in FOMM_LAYOUT.items()
    }
    torch.save({**fomm, "epoch": 99}, tmp_path / "vox-cpk.pth.tar")
    with pytest.raises(CheckpointLayoutError) as error:
        tpsm.import_official(tmp_path / "vox-cpk.pth.tar", tmp_path / "a.ckpt")
    assert str(error.value) == f"{tmp_path / 'vox-cpk.pth.tar'} is a fomm checkpoint, not tpsm"
    assert str(error.value.__cause__) == (
        "vox-cpk.pth.tar: no 'inpainting_network' state dict "
        "(it holds ['discriminator', 'generator', 'kp_detector'])"
    )

    zeros = {
        name: {k: torch.zeros(()).expand(s) for k, s in LAYOUT[name].items()}
        for name in NETWORKS[:2]
    }
    torch.save({**zeros, "kp_detector": fomm["kp_detector"]}, tmp_path / "mixed.pth.tar")
    with pytest.raises(CheckpointLayoutError) as error:
        tpsm.import_official(tmp_path / "mixed.pth.tar", tmp_path / "b.ckpt")
    message = str(error.value)
    assert message.startswith("mixed.pth.tar: kp_detector does not match our KPDetector: ")
    assert "122 missing: fg_encoder.bn1.bias, fg_encoder.bn1.num_batches_tracked, " in message
    assert "75 unexpected: down.weight, jacobian.bias, jacobian.weight, kp.bias, " in message

    no_bg = experiment_model_config("tpsm_demo")
    no_bg["model_params"]["common_params"]["bg"] = False
    demo = build_networks(experiment_model_config("tpsm_demo")["model_params"])
    torch.save({n: m.state_dict() for n, m in demo.items()}, tmp_path / "bg.pth.tar")
    with pytest.raises(CheckpointLayoutError, match="holds a 'bg_predictor' but the configuration"):
        import_official(tmp_path / "bg.pth.tar", tmp_path / "c.ckpt", no_bg)
    assert not any(tmp_path.glob("*.ckpt"))  # nothing written on failure


# -- thin-plate-spline maths --------------------------------------------------------------


def control_points(seed: int, groups: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, groups, 5, 2, generator=generator, dtype=torch.float64) * 1.6 - 0.8


def test_an_unregularised_tps_interpolates_its_control_points_and_keeps_affine_maps() -> None:
    driving, source = control_points(0), control_points(1)
    tps = KeypointTPS(driving.float(), source.float(), regularisation=0.0)
    mapped = tps.warp_coordinates(driving.float().reshape(2, 15, 2))  # (B, G, 15, 2)
    for group in range(3):
        own = mapped[:, group, 5 * group : 5 * group + 5]
        torch.testing.assert_close(own, source[:, group].float(), atol=2e-4, rtol=0)

    # control points related by an affine map: the spline is that map everywhere
    affine = torch.tensor([[0.9, -0.2], [0.3, 1.1]], dtype=torch.float64)
    shift = torch.tensor([0.05, -0.1], dtype=torch.float64)
    tps = KeypointTPS(driving.float(), (driving @ affine.T + shift).float(), regularisation=0.0)
    grid = tps.transform_frame((7, 9))
    expected = make_coordinate_grid((7, 9), torch.float64) @ affine.T + shift
    torch.testing.assert_close(grid, expected.float().expand_as(grid), atol=2e-4, rtol=0)


def test_the_official_regularised_tps_matches_a_float64_solve() -> None:
    """Upstream adds 0.01·I to the whole 8×8 system; a float64 numpy solve of that system
    evaluated at random points is the reference."""
    driving, source = control_points(2), control_points(3)
    points = torch.rand(1, 11, 2, dtype=torch.float64) * 2 - 1
    ours = KeypointTPS(driving.float(), source.float()).warp_coordinates(points.float())

    def u(squared: np.ndarray) -> np.ndarray:
        return squared * np.log(squared + 1e-9)

    for b in range(2):
        for g in range(3):
            c, y = driving[b, g].numpy(), source[b, g].numpy()
            kernel = u(((c[:, None] - c[None]) ** 2).sum(-1))
            basis = np.concatenate([c, np.ones((5, 1))], axis=1)
            system = np.block([[kernel, basis], [basis.T, np.zeros((3, 3))]]) + 0.01 * np.eye(8)
            params = np.linalg.solve(system, np.concatenate([y, np.zeros((3, 2))]))
            p = points[0].numpy()
            radial = u(((p[:, None] - c[None]) ** 2).sum(-1)) @ params[:5]
            expected = np.concatenate([p, np.ones((11, 1))], axis=1) @ params[5:] + radial
            np.testing.assert_allclose(ours[b, g].numpy(), expected, atol=2e-5)
    # the regularisation makes it a smoothing spline: the control points move off target
    at_controls = KeypointTPS(driving.float(), source.float()).warp_coordinates(
        driving[:, 0].float()
    )[:, 0]
    assert (at_controls - source[:, 0].float()).abs().max() > 1e-3


def test_random_tps_without_noise_is_the_identity_and_warps_frames_with_reflection() -> None:
    transform = RandomTPS(2, sigma_affine=0.0, sigma_tps=0.0, points_tps=5)
    points = torch.rand(2, 10, 2) * 2 - 1
    torch.testing.assert_close(transform.warp_coordinates(points), points)
    frame = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(transform.transform_frame(frame), frame, atol=1e-5, rtol=0)
    # a pure shift by one pixel: columns move left, the border reflects
    transform.theta[:, 0, 2] = 2 / 15
    shifted = transform.transform_frame(frame)
    torch.testing.assert_close(shifted[..., :-1], frame[..., 1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(shifted[..., -1], frame[..., -2], atol=1e-5, rtol=0)


def test_dropout_softmax_and_its_schedule() -> None:
    logits = torch.randn(64, 5, 3, 3)
    torch.testing.assert_close(
        dropout_softmax(logits, 0.0), torch.softmax(logits, 1), atol=1e-5, rtol=0
    )
    torch.manual_seed(0)
    out = dropout_softmax(logits, 0.5)
    dropped = out.sum(dim=(2, 3)) == 0  # (64, 5): a dropped map is zero everywhere
    assert not dropped[:, 0].any() and 0.3 < dropped[:, 1:].float().mean() < 0.7
    # the kept maps' softmax; upstream's +1e-6 in the denominator is relative to a sum ≥ e⁻ᵐ
    kept = torch.softmax(logits.masked_fill(dropped[..., None, None], -math.inf), 1)
    torch.testing.assert_close(out, kept, atol=1e-7, rtol=1e-4)

    params = {
        "dropout_epoch": 35,
        "dropout_maxp": 0.3,
        "dropout_startp": 0.1,
        "dropout_inc_epoch": 10,
    }
    schedule = [dropout_probability(params, epoch) for epoch in (0, 1, 5, 6, 34, 35)]
    assert schedule[:4] == pytest.approx([0.1, 0.13, 0.25, 0.28])
    assert schedule[4:] == [0.3, None]


def test_background_affine_acts_on_the_identity_grid() -> None:
    network = DenseMotionNetwork(8, 2, 16, 1, 3, scale_factor=1, multi_mask=False)
    kp = {"fg_kp": torch.rand(1, 5, 2) - 0.5}
    bg = torch.tensor([[[1.0, 0.0, 0.1], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]]])
    grids = network.create_transformations(torch.zeros(1, 3, 5, 5), kp, kp, bg)
    identity = make_coordinate_grid((5, 5))
    torch.testing.assert_close(
        grids[0, 0], identity * torch.tensor([1.0, 0.5]) + torch.tensor([0.1, 0.0])
    )
    # then the TPS warps, in group order
    tps = KeypointTPS(kp["fg_kp"].view(1, 1, 5, 2), kp["fg_kp"].view(1, 1, 5, 2))
    torch.testing.assert_close(grids[:, 1:], tps.transform_frame((5, 5)))


# -- training -------------------------------------------------------------------------------


def demo_module(demo_config: dict, **kwargs) -> TPSMLightning:
    train_params = {**demo_config["train_params"], "bg_start": 0}
    return TPSMLightning(
        demo_config["model_params"],
        kwargs.pop("train_params", train_params),
        perceptual_pretrained=False,
        resolution=64,
        train_avd_params=demo_config["train_avd_params"],
        **kwargs,
    )


def test_losses_follow_the_epoch_schedule_and_gradients_are_clipped(demo_config) -> None:
    torch.manual_seed(0)
    module = demo_module(demo_config, train_params={**demo_config["train_params"], "bg_start": 1})
    batch = {"source": torch.rand(2, 3, 64, 64), "driving": torch.rand(2, 3, 64, 64)}
    losses, generated = module.reconstruction_losses(batch, epoch=0)
    assert set(losses) == {"perceptual", "equivariance_value", "warp_loss"}
    assert len(generated["occlusion_map"]) == 4
    assert [m.shape[-1] for m in generated["occlusion_map"]] == [8, 16, 32, 64]
    torch.testing.assert_close(
        generated["contribution_maps"].sum(1), torch.ones(2, 32, 32), atol=1e-5, rtol=0
    )
    losses, _ = module.reconstruction_losses(batch, epoch=1)
    assert set(losses) == {"perceptual", "equivariance_value", "warp_loss", "bg"}
    # a fresh background predictor gives identity motions both ways: no background loss
    assert float(losses["bg"].detach()) == pytest.approx(0.0, abs=1e-6)
    sum(losses.values()).backward()
    assert module.bg_predictor.bg_encoder.fc.weight.grad.abs().max() > 0
    for parameter in module.parameters():
        if parameter.grad is not None:
            parameter.grad.mul_(1e4)
    inpainting_before = max(p.grad.abs().max() for p in module.inpainting_network.parameters())
    module.on_before_optimizer_step(None)
    for network in (module.kp_detector, module.dense_motion_network, module.bg_predictor):
        largest = max(p.grad.abs().max() for p in network.parameters() if p.grad is not None)
        assert float(largest) == pytest.approx(GRAD_CLIP_MAX_NORM, rel=1e-4)
    inpainting_after = max(p.grad.abs().max() for p in module.inpainting_network.parameters())
    assert inpainting_after == inpainting_before > GRAD_CLIP_MAX_NORM


def test_training_steps_update_weights_with_finite_losses(demo_config, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = demo_module(demo_config)
    trainer, loader, before = fit_pairs(module, torch.rand(4, 3, 64, 64), batch_size=2)
    assert_training_losses(
        trainer,
        [
            "perceptual",
            "equivariance_value",
            "warp_loss",
            "bg",
        ],
    )
    after = module.state_dict()
    for key in (
        "inpainting_network.final.weight",
        "dense_motion_network.maps.weight",
        "kp_detector.fg_encoder.fc.weight",
        "bg_predictor.bg_encoder.fc.weight",
    ):
        assert not torch.equal(before[key], after[key]), key
    assert torch.equal(
        before["avd_network.decoder.0.weight"], after["avd_network.decoder.0.weight"]
    )
    assert not any("vgg" in key for key in after)
    optimizer = trainer.optimizers[0]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-4, 1e-4]
    assert optimizer.param_groups[0]["betas"] == (0.5, 0.999)

    # stage 2: the AVD network starts from the reconstruction weights and alone is trained
    path = tmp_path / "reconstruction.ckpt"
    trainer.save_checkpoint(path)
    avd = demo_module(demo_config, stage="avd", init_checkpoint=str(path))
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(avd, loader)
    assert set(trainer.callback_metrics) == {"train/rec_kp", "train/loss"}
    assert all(torch.isfinite(v) for v in trainer.callback_metrics.values())
    state = avd.state_dict()
    for key in ("inpainting_network.final.weight", "kp_detector.fg_encoder.fc.weight"):
        assert torch.equal(state[key], after[key]), key
    assert not torch.equal(
        state["avd_network.decoder.0.weight"], after["avd_network.decoder.0.weight"]
    )
    # as upstream, the frozen keypoint detector runs in training mode: its statistics move
    key = "kp_detector.fg_encoder.bn1.running_mean"
    assert not torch.equal(state[key], after[key])


def test_random_scale_scales_each_axis_within_the_range() -> None:
    torch.manual_seed(3)
    kp = {"fg_kp": torch.rand(2, 10, 2) - 0.5}
    scaled = random_scale(kp, 0.25)["fg_kp"]
    factors = scaled / kp["fg_kp"]  # (2, 10, 2): one factor per sample and axis
    torch.testing.assert_close(factors, factors[:, :1].expand_as(factors))
    assert ((factors >= 0.75) & (factors <= 1.25)).all()


# -- animation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_animator(demo_config, tmp_path_factory) -> TPSMAnimator:
    """Demo-sized networks with non-trivial BatchNorm statistics, a background predictor that
    moves the background, and an AVD head that outputs spread-out keypoints."""
    torch.manual_seed(0)
    networks = build_networks(demo_config["model_params"])
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for network in networks.values():
            for layer in network.modules():
                if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                    n = layer.num_features
                    layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                    layer.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
        networks["bg_predictor"].bg_encoder.fc.weight.normal_(0, 0.05, generator=generator)
        avd_head = networks["avd_network"].decoder[-1]
        avd_head.weight.mul_(0.1)
        avd_head.bias.copy_(torch.rand(40, generator=generator) * 1.6 - 0.8)
    state = {
        f"{name}.{k}": v for name, net in networks.items() for k, v in net.state_dict().items()
    }
    hparams = {"model_params": demo_config["model_params"], "resolution": 64}
    path = tmp_path_factory.mktemp("tpsm") / "demo.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": hparams}, path)
    return TPSMAnimator.from_checkpoint(path)


def smooth_frames(n: int) -> torch.Tensor:
    """Random smooth 64² frames (4×4 noise, bilinear) fading to black at the border, like a
    face on a dark background. The warps sample outside the frame, where ``grid_sample`` pads
    with zeros: at a bright border that zero step turns the float32 round-off of batched
    convolutions (≈2e-7 in the flow) into frame differences above 1e-5."""
    noise = torch.rand(n, 3, 4, 4)
    frames = torch.nn.functional.interpolate(noise, size=(64, 64), mode="bilinear")
    window = torch.sin(torch.linspace(0, math.pi, 64))
    return frames * (window[:, None] * window[None, :])


def official_loop(
    animator: TPSMAnimator, source: torch.Tensor, driving: torch.Tensor, mode: str
) -> torch.Tensor:
    """demo.py's make_animation (reconstruction.py for ``reconstruction``): one frame at a
    time, the full networks each time, the relative keypoints written out as upstream."""
    kp_detector, dense, inpainting = (
        animator.kp_detector,
        animator.dense_motion_network,
        animator.inpainting_network,
    )
    predictions = []
    with torch.no_grad():
        kp_source = kp_detector(source[None])
        kp_driving_initial = kp_detector(driving[:1])
        for frame in driving:
            kp_driving = kp_detector(frame[None])
            bg_param = None
            if mode in ("standard", "reconstruction"):
                kp_norm = kp_driving
                if mode == "reconstruction":
                    bg_param = animator.bg_predictor(source[None], frame[None])
            elif mode == "relative":
                source_area = ConvexHull(kp_source["fg_kp"][0].numpy()).volume
                driving_area = ConvexHull(kp_driving_initial["fg_kp"][0].numpy()).volume
                scale = np.sqrt(source_area) / np.sqrt(driving_area)
                diff = (kp_driving["fg_kp"] - kp_driving_initial["fg_kp"]) * scale
                kp_norm = {"fg_kp": diff + kp_source["fg_kp"]}
            else:
                kp_norm = animator.avd_network(kp_source, kp_driving)
            dense_motion = dense(
                source_image=source[None],
                kp_driving=kp_norm,
                kp_source=kp_source,
                bg_param=bg_param,
                dropout_flag=False,
            )
            predictions.append(inpainting(source[None], dense_motion)["prediction"])
    return torch.cat(predictions)


def test_batched_animation_equals_the_per_frame_loop(demo_animator) -> None:
    assert_avd_animation_matches_loop(demo_animator, official_loop, smooth_frames)


def test_relative_keypoints_scale_the_motion_by_the_hull_ratio() -> None:
    square = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]]])
    source = {"fg_kp": square * 0.5}
    initial = {"fg_kp": square}
    driving = {"fg_kp": square + 0.2}
    # hull areas 0.25 and 1: scale 0.5
    new = animation_keypoints(source, driving, initial, mode="relative")
    torch.testing.assert_close(new["fg_kp"], square * 0.5 + 0.1)
    unscaled = animation_keypoints(source, driving, initial, adapt_movement_scale=False)
    torch.testing.assert_close(unscaled["fg_kp"], square * 0.5 + 0.2)
    assert animation_keypoints(source, driving, initial, mode="standard") is driving
    with pytest.raises(ValueError, match="mode 'avd' needs the AVD network"):
        animation_keypoints(source, driving, initial, mode="avd")


def official_relative_kp(kp_source: dict, kp_driving: dict, kp_initial: dict) -> torch.Tensor:
    """Thin-Plate-Spline-Motion-Model ``demo.relative_kp``, step by step: float32 keypoints,
    hull volumes of their float32 values, a numpy float64 scale, in-place multiply."""
    source_area = ConvexHull(kp_source["fg_kp"][0].numpy()).volume
    driving_area = ConvexHull(kp_initial["fg_kp"][0].numpy()).volume
    adapt_movement_scale = np.sqrt(source_area) / np.sqrt(driving_area)
    kp_value_diff = kp_driving["fg_kp"] - kp_initial["fg_kp"]
    kp_value_diff *= adapt_movement_scale
    return kp_value_diff + kp_source["fg_kp"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_relative_keypoints_equal_the_official_arithmetic_bit_for_bit(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    # 10 TPS x 5 control points in [-1, 1], as the keypoint detector's tanh outputs
    source, initial, driving = (
        {"fg_kp": torch.rand(1, 50, 2, generator=generator) * 2 - 1} for _ in range(3)
    )
    ours = animation_keypoints(source, driving, initial, mode="relative")["fg_kp"]
    assert ours.dtype == torch.float32
    assert torch.equal(ours, official_relative_kp(source, driving, initial))


def test_reconstruction_uses_the_background_motion(demo_animator) -> None:
    assert_reconstruction_uses_background(demo_animator, official_loop, smooth_frames)
