"""DaGAN: official state-dict layout, checkpoint import, depth-aware attention, training and
batched animation.

The official layouts (``tests/data/official_layouts/dagan.json``) list every state-dict key and
shape of CVPR2022-DaGAN's own modules: the generator, RGB-D keypoint detector and
discriminator built from ``config/vox-adv-256.yaml`` with ``--kp_num 15 --rgbd``, and the
ResNet-18 / ResNet-50 face-depth encoder and decoder; the official files imported here are
built from those lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from motion_testing import (
    assert_batched_matches,
    assert_training_losses,
    fit_pairs,
)
from official_params import DAGAN_VOX256 as VOX256_MODEL_PARAMS
from talking_heads.cli import main
from talking_heads.config import experiment_model_config
from talking_heads.models import METHODS
from talking_heads.models.checkpoints import CheckpointLayoutError
from talking_heads.models.dagan.animate import DaGANAnimator
from talking_heads.models.dagan.checkpoint import import_official, strip_ddp_prefix
from talking_heads.models.dagan.depth import DepthEncoder, build_depth, estimate_depth
from talking_heads.models.dagan.module import DaGANLightning, kp_distance_loss
from talking_heads.models.dagan.networks import (
    DepthAwareAttention,
    build_networks,
)
from talking_heads.models.fomm.animate import normalize_kp
from talking_heads.weights import (
    ALLOW_UNVERIFIED_ENV,
    WEIGHTS_ENV,
    ChecksumMismatchError,
    MissingWeightsError,
)

LAYOUT_DIR = Path(__file__).parent / "data" / "official_layouts"
LAYOUTS = json.loads((LAYOUT_DIR / "dagan.json").read_text())["layouts"]
FOMM_LAYOUTS = json.loads((LAYOUT_DIR / "fomm.json").read_text())["layouts"]
NETWORKS = ("generator", "kp_detector", "discriminator")
#: the ResNet classifier that upstream's encoder.pth holds and the encoder never uses
FC_KEYS = {"encoder.fc.weight", "encoder.fc.bias"}


def random_state(shapes: dict[str, list[int]], generator: torch.Generator) -> dict:
    return {
        key: torch.tensor(7)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in shapes.items()
    }


def official_file(path: Path, layouts: dict, *, prefix: str = "module.", seed: int = 0) -> Path:
    """A checkpoint as upstream's DDP training saves it: ``module.``-prefixed state dicts of
    the three networks, three optimiser states and the epoch."""
    generator = torch.Generator().manual_seed(seed)
    checkpoint: dict = {}
    for network in NETWORKS:
        state = random_state(layouts[network], generator)
        checkpoint[network] = {prefix + key: value for key, value in state.items()}
        checkpoint[f"optimizer_{network}"] = {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
            "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": [0]}],
        }
    checkpoint["epoch"] = 149
    torch.save(checkpoint, path)
    return path


def depth_folder(folder: Path, layouts: dict, seed: int = 1) -> Path:
    """Upstream's ``encoder.pth`` (with the classifier and monodepth2's metadata) and
    ``depth.pth``."""
    generator = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = random_state(layouts["depth_encoder"], generator)
    torch.save(
        {**encoder, "height": 256, "width": 256, "use_stereo": False}, folder / "encoder.pth"
    )
    torch.save(random_state(layouts["depth_decoder"], generator), folder / "depth.pth")
    return folder


def built(model_params: dict) -> dict[str, torch.nn.Module]:
    """Our keypoint detector, generator and discriminator by name."""
    kp_detector, generator, discriminator = build_networks(model_params)
    return {"generator": generator, "kp_detector": kp_detector, "discriminator": discriminator}


@pytest.fixture(scope="module")
def vox_networks() -> dict[str, torch.nn.Module]:
    model_params = experiment_model_config("dagan_vox256")["model_params"]
    torch.manual_seed(0)
    networks = built(model_params)
    networks["depth_encoder"], networks["depth_decoder"] = build_depth(model_params["depth_params"])
    return networks


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights directory holding random official-layout ResNet-18 depth files."""
    weights = tmp_path / "weights"
    depth_folder(weights / "weights_19", LAYOUTS["depth-resnet18"])
    monkeypatch.setenv(WEIGHTS_ENV, str(weights))
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    return weights


# -- layout and configuration ---------------------------------------------------------------
def test_our_networks_have_the_official_keys_and_shapes(vox_networks) -> None:
    for name in NETWORKS:
        ours = {k: list(v.shape) for k, v in vox_networks[name].state_dict().items()}
        assert ours == LAYOUTS["vox-adv-256"][name], name
    official = LAYOUTS["depth-resnet18"]
    ours = {k: list(v.shape) for k, v in vox_networks["depth_encoder"].state_dict().items()}
    assert set(official["depth_encoder"]) - set(ours) == FC_KEYS
    assert ours == {k: v for k, v in official["depth_encoder"].items() if k not in FC_KEYS}
    ours = {k: list(v.shape) for k, v in vox_networks["depth_decoder"].state_dict().items()}
    assert ours == official["depth_decoder"]
    # the keypoint detector sees RGB + depth; the discriminator RGB + 15 keypoint heatmaps
    kp_in = LAYOUTS["vox-adv-256"]["kp_detector"]["predictor.encoder.down_blocks.0.conv.weight"]
    assert kp_in == [64, 4, 3, 3]
    assert vox_networks["discriminator"].discs["1"].down_blocks[0].conv.in_channels == 3 + 15


def test_resnet50_depth_model_of_upstream_training_has_the_official_layout() -> None:
    encoder, decoder = build_depth({"num_layers": 50})
    official = LAYOUTS["depth-resnet50"]
    ours = {k: list(v.shape) for k, v in encoder.state_dict().items()}
    assert ours == {k: v for k, v in official["depth_encoder"].items() if k not in FC_KEYS}
    assert {k: list(v.shape) for k, v in decoder.state_dict().items()} == official["depth_decoder"]
    assert encoder.num_ch_enc == [64, 256, 512, 1024, 2048]


def test_model_config_holds_the_official_vox_adv_256_values() -> None:
    cfg = experiment_model_config("dagan_vox256")
    assert cfg["model_params"] == VOX256_MODEL_PARAMS
    train = cfg["train_params"]
    assert (train["num_epochs"], train["num_repeats"], train["epoch_milestones"]) == (150, 75, [])
    assert (train["lr_generator"], train["lr_discriminator"], train["lr_kp_detector"]) == (
        2e-4,
        2e-4,
        2e-4,
    )
    assert train["scales"] == [1, 0.5, 0.25, 0.125]
    assert train["loss_weights"] == {
        "generator_gan": 1,
        "discriminator_gan": 1,
        "feature_matching": [10, 10, 10, 10],
        "perceptual": [10, 10, 10, 10, 10],
        "equivariance_value": 10,
        "equivariance_jacobian": 10,
        "kp_distance": 10,
        "kp_prior": 0,
        "kp_scale": 0,
        "depth_constraint": 0,
    }
    assert cfg["depth_pretrained"].endswith("weights_19")
    demo = experiment_model_config("dagan_demo")
    assert demo["depth_pretrained"] is False and demo["perceptual_pretrained"] is False


# -- checkpoint import ----------------------------------------------------------------------
def test_official_checkpoint_imports_strictly_and_loads_for_animation_and_training(
    tmp_path: Path, weights_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    official = official_file(tmp_path / "DaGAN_vox_adv_256.pth.tar", LAYOUTS["vox-adv-256"])
    out = tmp_path / "imported.ckpt"
    argv = ["import-checkpoint", "--method", "dagan", "--official", str(official)]
    with pytest.warns(UserWarning, match="UNVERIFIED WEIGHTS"):
        assert main([*argv, "--out", str(out)]) in (0, None)
    assert f"-> {out}" in capsys.readouterr().out
    source = torch.load(official, weights_only=True)
    written = torch.load(out, weights_only=True)
    state = written["state_dict"]
    assert written["epoch"] == 149 and written["imported_from"]["file"] == official.name
    for network in NETWORKS:
        assert all(key.startswith("module.") for key in source[network])
        for key, value in source[network].items():
            assert torch.equal(state[f"{network}.{key.removeprefix('module.')}"], value), key
    encoder = torch.load(weights_dir / "weights_19" / "encoder.pth", weights_only=True)
    decoder = torch.load(weights_dir / "weights_19" / "depth.pth", weights_only=True)
    for key, value in encoder.items():
        if key.startswith("encoder.") and key not in FC_KEYS:
            assert torch.equal(state[f"depth_encoder.{key}"], value), key
    for key, value in decoder.items():
        assert torch.equal(state[f"depth_decoder.{key}"], value), key
    expected = sum(len(source[n]) for n in NETWORKS) + len(decoder) + len(encoder) - 3 - 2
    assert len(state) == expected
    depth = written["imported_from"]["depth"]
    assert Path(depth["encoder"]["file"]).name == "encoder.pth"
    assert len(depth["decoder"]["sha256"]) == 64
    assert written["hyper_parameters"]["depth_pretrained"] is False

    animator = DaGANAnimator.from_checkpoint(out)
    assert animator.resolution == 256
    assert torch.equal(
        animator.generator.AttnModule.gamma, source["generator"]["module.AttnModule.gamma"]
    )
    assert torch.equal(
        animator.depth_encoder.encoder.bn1.running_var, encoder["encoder.bn1.running_var"]
    )
    module = DaGANLightning.load_from_checkpoint(out, perceptual_pretrained=False, strict=True)
    assert torch.equal(
        module.depth_decoder.decoder[10].conv.weight, decoder["decoder.10.conv.weight"]
    )
    assert not module.depth_encoder.training and not any(
        p.requires_grad for p in module.depth_encoder.parameters()
    )


def demo_official(tmp_path: Path, name: str, prefix: str = "module.") -> tuple[dict, dict, Path]:
    """The demo experiment's model config with the depth model in the weights directory,
    the layouts of its networks and an official-style file of that size."""
    cfg = experiment_model_config("dagan_demo")
    cfg["depth_pretrained"] = True
    layouts = {
        n: {k: list(v.shape) for k, v in m.state_dict().items()}
        for n, m in built(cfg["model_params"]).items()
    }
    return cfg, layouts, official_file(tmp_path / name, layouts, prefix=prefix)


def test_files_without_the_ddp_prefix_import_too(tmp_path: Path) -> None:
    assert strip_ddp_prefix("module.AttnModule.gamma") == "AttnModule.gamma"
    assert strip_ddp_prefix("first.module.x") == "first.module.x"
    cfg, layouts, official = demo_official(tmp_path, "plain.pth.tar", prefix="")
    cfg["depth_pretrained"] = str(depth_folder(tmp_path / "depth", LAYOUTS["depth-resnet18"]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ALLOW_UNVERIFIED_ENV, "1")
        with pytest.warns(UserWarning, match="UNVERIFIED"):
            out = import_official(official, tmp_path / "plain.ckpt", cfg)
    state = torch.load(out, weights_only=True)["state_dict"]
    for key, value in torch.load(official, weights_only=True)["generator"].items():
        assert torch.equal(state[f"generator.{key}"], value), key
    # as upstream's Logger.load_cpk, a file without a discriminator still imports
    checkpoint = torch.load(official, weights_only=True)
    del checkpoint["discriminator"]
    torch.save(checkpoint, official)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ALLOW_UNVERIFIED_ENV, "1")
        with pytest.warns(RuntimeWarning, match="holds no 'discriminator'"):
            out = import_official(official, tmp_path / "no-disc.ckpt", cfg)
    state = torch.load(out, weights_only=True)["state_dict"]
    assert {k for k in state if k.startswith("discriminator.")} == {
        f"discriminator.{k}" for k in layouts["discriminator"]
    }


def test_a_layout_mismatch_names_the_network_and_keys(tmp_path: Path, weights_dir: Path) -> None:
    dagan = METHODS.get("dagan")
    fomm_file = official_file(
        tmp_path / "vox-adv-cpk.pth.tar", FOMM_LAYOUTS["vox-adv-256"], prefix=""
    )
    with pytest.raises(CheckpointLayoutError) as error:
        dagan.import_official(fomm_file, tmp_path / "a.ckpt")
    message = str(error.value)
    assert message.startswith(
        "vox-adv-cpk.pth.tar: generator does not match our DepthAwareGenerator: 28 missing: "
        "AttnModule.gamma, AttnModule.key_conv.bias,"
    )
    assert "shape: dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight" in message
    # a ResNet-50 depth model where the experiment builds the ResNet-18 one
    depth_folder(weights_dir / "weights_19", LAYOUTS["depth-resnet50"])
    cfg, _, dagan_file = demo_official(tmp_path, "DaGAN.pth.tar")
    with (
        pytest.warns(UserWarning, match="UNVERIFIED"),
        pytest.raises(
            CheckpointLayoutError,
            match=r"weights_19: depth_encoder does not match our DepthEncoder: 198 unexpected: "
            r"encoder\.layer1\.0\.bn3\.bias, .*; 23 shape: encoder\.layer1\.0\.conv1\.weight "
            r"\(64, 64, 1, 1\) != ours \(64, 64, 3, 3\)",
        ),
    ):
        import_official(dagan_file, tmp_path / "b.ckpt", cfg)
    assert not any(tmp_path.glob("*.ckpt"))  # nothing written on failure


def test_depth_weights_must_be_present_and_are_checked(
    tmp_path: Path, weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, _, dagan_file = demo_official(tmp_path, "DaGAN.pth.tar")
    monkeypatch.delenv(ALLOW_UNVERIFIED_ENV)
    with pytest.raises(ChecksumMismatchError, match="no published sha256"):
        import_official(dagan_file, tmp_path / "a.ckpt", cfg)
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "empty"))
    with pytest.raises(MissingWeightsError, match=r"empty/weights_19/encoder\.pth: download"):
        import_official(dagan_file, tmp_path / "a.ckpt", cfg)
    with pytest.raises(ValueError, match="depth_pretrained is false"):
        import_official(dagan_file, tmp_path / "a.ckpt", {**cfg, "depth_pretrained": False})
    assert not any(tmp_path.glob("*.ckpt"))


# -- method-specific maths ------------------------------------------------------------------
def official_attention(module: DepthAwareAttention, source, feat) -> torch.Tensor:
    """Upstream's ``DepthAwareAttention.forward``: explicit N×N attention with bmm."""
    b, c, w, h = source.shape
    query = torch.relu(module.query_conv(source)).view(b, -1, w * h).permute(0, 2, 1)
    key = torch.relu(module.key_conv(feat)).view(b, -1, w * h)
    attention = torch.softmax(torch.bmm(query, key), dim=-1)
    value = torch.relu(module.value_conv(feat)).view(b, -1, w * h)
    out = torch.bmm(value, attention.permute(0, 2, 1)).view(b, c, w, h)
    return module.gamma * out + feat


def test_depth_aware_attention_is_the_identity_at_gamma_zero_and_upstreams_otherwise() -> None:
    torch.manual_seed(0)
    attention = DepthAwareAttention(64)
    assert attention.gamma.item() == 0.0
    depth_features, warped = torch.rand(2, 64, 12, 10), torch.randn(2, 64, 12, 10)
    with torch.no_grad():
        assert torch.equal(attention(depth_features, warped), warped)
        attention.gamma.fill_(0.7)
        ours = attention(depth_features, warped)
        torch.testing.assert_close(
            ours, official_attention(attention, depth_features, warped), atol=1e-5, rtol=1e-5
        )
    assert (ours - warped).abs().max() > 0.01
    # queries come from the depth features: other depth, other output
    with torch.no_grad():
        assert not torch.allclose(attention(depth_features.flip(0), warped), ours)


def test_kp_distance_counts_close_keypoint_pairs_without_gradient() -> None:
    # three keypoints: 0 and 1 are 0.1 apart, 2 is far from both
    points = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [0.8, 0.8]]], requires_grad=True)
    spread = torch.tensor([[[-0.5, 0.0], [0.0, 0.5], [0.5, 0.0]]])
    loss = kp_distance_loss({"value": points}, {"value": spread}, weight=10)
    # source: pairs (0, 1) and (1, 0) give 2 each over 9 entries; driving: none
    assert loss.item() == pytest.approx(10 * 4 / 9, rel=1e-6)
    assert not loss.requires_grad  # torch.sign has no gradient: upstream's term trains nothing


def test_depth_network_shapes_and_range() -> None:
    torch.manual_seed(0)
    encoder, decoder = build_depth({"num_layers": 18})
    encoder.eval(), decoder.eval()
    with torch.no_grad():
        features = encoder(torch.rand(2, 3, 64, 96))
        disparity = estimate_depth(encoder, decoder, torch.rand(2, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [
        (64, 32, 48),
        (64, 16, 24),
        (128, 8, 12),
        (256, 4, 6),
        (512, 2, 3),
    ]
    assert disparity.shape == (2, 1, 64, 96)
    assert disparity.min() > 0 and disparity.max() < 1
    with pytest.raises(ValueError, match="not a valid number of resnet layers"):
        DepthEncoder(20)


# -- training -------------------------------------------------------------------------------
def demo_module(**loss_weights) -> DaGANLightning:
    cfg = experiment_model_config("dagan_demo")
    cfg["train_params"]["loss_weights"].update(loss_weights)
    return DaGANLightning(
        cfg["model_params"],
        cfg["train_params"],
        perceptual_pretrained=False,
        depth_pretrained=False,
        resolution=64,
    )


def test_training_steps_update_weights_with_finite_losses_and_a_frozen_depth_net() -> None:
    torch.manual_seed(0)
    module = demo_module(depth_constraint=1)
    trainer, _, before = fit_pairs(module, torch.rand(4, 3, 64, 64), batch_size=2)
    assert_training_losses(
        trainer,
        (
            "perceptual",
            "gen_gan",
            "feature_matching",
            "equivariance_value",
            "equivariance_jacobian",
            "kp_distance",
            "depth_constraint",
            "disc_gan",
        ),
        outside_total=("disc_gan",),
    )
    after = module.state_dict()
    for key in (
        "generator.final.weight",
        "generator.src_first.conv.weight",
        "generator.AttnModule.gamma",
        "kp_detector.predictor.encoder.down_blocks.0.conv.weight",
        "discriminator.discs.1.conv.bias",
    ):
        assert not torch.equal(before[key], after[key]), key
    frozen = [key for key in after if key.startswith(("depth_encoder.", "depth_decoder."))]
    assert len(frozen) == 120 + 28  # weights and BatchNorm statistics alike
    assert all(torch.equal(before[key], after[key]) for key in frozen)
    assert not module.depth_encoder.training and module.kp_detector.training


def test_unimplemented_loss_terms_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\['kp_scale'\] are not implemented"):
        demo_module(kp_scale=1)


# -- animation ------------------------------------------------------------------------------
def upstream_loop(
    animator: DaGANAnimator, source: torch.Tensor, driving: torch.Tensor, relative: bool
) -> torch.Tensor:
    """demo.py's make_animation: depth and keypoints of the source and the first driving frame
    once, then per frame its depth, keypoints on frame‖depth and the whole generator."""
    encoder, decoder = animator.depth_encoder, animator.depth_decoder
    kp_detector, generator = animator.kp_detector, animator.generator
    predictions = []
    with torch.no_grad():
        source = source[None]
        depth_source = estimate_depth(encoder, decoder, source)
        depth_initial = estimate_depth(encoder, decoder, driving[:1])
        kp_source = kp_detector(torch.cat((source, depth_source), 1))
        kp_initial = kp_detector(torch.cat((driving[:1], depth_initial), 1))
        for frame in driving:
            depth_map = estimate_depth(encoder, decoder, frame[None])
            kp_driving = kp_detector(torch.cat((frame[None], depth_map), 1))
            kp_norm = normalize_kp(
                kp_source=kp_source,
                kp_driving=kp_driving,
                kp_driving_initial=kp_initial,
                use_relative_movement=relative,
                use_relative_jacobian=relative,
                adapt_movement_scale=relative,
            )
            out = generator(
                source,
                kp_source=kp_source,
                kp_driving=kp_norm,
                source_depth=depth_source,
                driving_depth=depth_map,
            )
            predictions.append(out["prediction"])
    return torch.cat(predictions)


def test_batched_animation_equals_the_per_frame_loop(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = demo_module()
    with torch.no_grad():  # make the random networks respond to their inputs
        module.generator.AttnModule.gamma.fill_(1.0)
        module.kp_detector.kp.weight.mul_(30)
        module.kp_detector.jacobian.weight.normal_(std=1e-2)
        module.generator.final.weight.mul_(10)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    animator = DaGANAnimator.from_checkpoint(path)
    assert animator.resolution == 64
    assert not any(network.training for network in animator.networks.values())
    source, driving = torch.rand(3, 64, 64), torch.rand(7, 3, 64, 64)
    relative = upstream_loop(animator, source, driving, relative=True)
    absolute = upstream_loop(animator, source, driving, relative=False)
    assert_batched_matches(animator, source, driving, relative, absolute, (4, 1), differ=1e-3)
