"""Import of official first-order-model checkpoints: strict key mapping into our checkpoint.

The official layouts (``tests/data/official_layouts/fomm.json``) list every state-dict key and
shape of first-order-model's own modules built from ``config/vox-256.yaml`` and
``config/vox-adv-256.yaml``; the files imported here are built from those lists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from motion_testing import layout_state, official_layouts
from talking_heads.cli import main
from talking_heads.config import experiment_model_config
from talking_heads.models import METHODS
from talking_heads.models.checkpoints import CheckpointLayoutError
from talking_heads.models.fomm.animate import FOMMAnimator
from talking_heads.models.fomm.module import FOMMLightning
from talking_heads.models.fomm.networks import build_networks

LAYOUTS = official_layouts("fomm")
EXPERIMENTS = {"vox-256": "fomm_vox256", "vox-adv-256": "fomm_vox256_adv"}


def official_file(path: Path, layout: str, seed: int = 0, **edits) -> Path:
    """An official-layout checkpoint: random tensors in every listed key, optimiser state."""
    generator = torch.Generator().manual_seed(seed)
    checkpoint: dict = {}
    for network, keys in LAYOUTS[layout].items():
        checkpoint[network] = layout_state(keys, generator, batches_tracked=5)
    checkpoint["optimizer_generator"] = {"state": {}, "param_groups": [{"lr": 2e-4}]}
    checkpoint["epoch"] = 99
    for key, value in edits.items():
        network, _, name = key.partition("__")
        if value is None:
            del checkpoint[network][name]
        else:
            checkpoint[network][name] = value
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("layout", sorted(EXPERIMENTS))
def test_our_networks_have_the_official_keys_and_shapes(layout: str) -> None:
    model_params = experiment_model_config(EXPERIMENTS[layout])["model_params"]
    networks = dict(
        zip(
            ("kp_detector", "generator", "discriminator"), build_networks(model_params), strict=True
        )
    )
    for name, module in networks.items():
        ours = {k: list(v.shape) for k, v in module.state_dict().items()}
        assert ours == LAYOUTS[layout][name], name


@pytest.mark.parametrize("layout", sorted(EXPERIMENTS))
def test_official_checkpoint_imports_strictly_and_loads_for_animation_and_training(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    official = official_file(tmp_path / f"{layout}-cpk.pth.tar", layout)
    out = tmp_path / "imported.ckpt"
    argv = ["import-checkpoint", "--method", "fomm", "--official", str(official), "--out", str(out)]
    assert main([*argv, "--experiment", EXPERIMENTS[layout]]) in (0, None)
    assert f"-> {out}" in capsys.readouterr().out
    source = torch.load(official, weights_only=True)
    written = torch.load(out, weights_only=True)
    assert written["imported_from"]["file"] == official.name and written["epoch"] == 99
    assert len(written["imported_from"]["sha256"]) == 64
    for network in ("kp_detector", "generator", "discriminator"):
        for key, value in source[network].items():
            assert torch.equal(written["state_dict"][f"{network}.{key}"], value), key
    animator = FOMMAnimator.from_checkpoint(out)
    assert torch.equal(animator.kp_detector.down.weight, source["kp_detector"]["down.weight"])
    bn = animator.generator.dense_motion_network.hourglass.encoder.down_blocks[0].norm
    assert torch.equal(
        bn.running_var,
        source["generator"][
            "dense_motion_network.hourglass.encoder.down_blocks.0.norm.running_var"
        ],
    )
    module = FOMMLightning.load_from_checkpoint(out, perceptual_pretrained=False, strict=True)
    down = module.discriminator.discs["1"].down_blocks[0].conv
    assert hasattr(down, "weight_orig") == (layout == "vox-256")  # spectral norm in vox-256 only
    assert down.in_channels == (3 + 10 if layout == "vox-adv-256" else 3)  # keypoint heatmaps


def test_a_layout_mismatch_names_the_network_and_keys(tmp_path: Path) -> None:
    fomm = METHODS.get("fomm")
    adv = official_file(tmp_path / "vox-adv-cpk.pth.tar", "vox-adv-256")
    with pytest.raises(CheckpointLayoutError) as error:
        fomm.import_official(adv, tmp_path / "a.ckpt", "fomm_vox256")
    message = str(error.value)
    assert message.startswith("vox-adv-cpk.pth.tar: discriminator does not match")
    assert (
        "missing: discs.1.conv.weight_orig" in message
        and "unexpected: discs.1.conv.weight" in message
    )
    no_antialias = official_file(
        tmp_path / "no-down.pth.tar", "vox-256", **{"kp_detector__down.weight": None}
    )
    with pytest.raises(CheckpointLayoutError, match=r"kp_detector .*1 missing: down\.weight$"):
        fomm.import_official(no_antialias, tmp_path / "b.ckpt")
    wider = official_file(
        tmp_path / "kp15.pth.tar",
        "vox-256",
        **{"kp_detector__kp.weight": torch.zeros(15, 35, 7, 7)},
    )
    with pytest.raises(
        CheckpointLayoutError, match=r"shape: kp\.weight \(15, 35, 7, 7\) != ours \(10, 35, 7, 7\)"
    ):
        fomm.import_official(wider, tmp_path / "c.ckpt")
    assert not any(tmp_path.glob("*.ckpt"))  # nothing written on failure


def test_other_methods_files_and_missing_files_are_refused(tmp_path: Path) -> None:
    fomm = METHODS.get("fomm")
    mraa = tmp_path / "vox256.pth"
    torch.save(
        {"generator": {}, "region_predictor": {}, "bg_predictor": {}, "epoch_reconstruction": 9},
        mraa,
    )
    with pytest.raises(CheckpointLayoutError, match=r"vox256\.pth is a mraa checkpoint, not fomm$"):
        try:
            fomm.import_official(mraa, tmp_path / "x.ckpt")
        except CheckpointLayoutError as error:  # the layout problem behind it stays attached
            assert re.search(
                r"no 'kp_detector' state dict \(it holds "
                r"\['bg_predictor', 'generator', 'region_predictor'\]\)",
                str(error.__cause__),
            )
            raise
    with pytest.raises(FileNotFoundError, match="official checkpoint not found"):
        fomm.import_official(tmp_path / "absent.pth.tar", tmp_path / "y.ckpt")


def test_vox_adv_experiment_holds_the_official_vox_adv_256_values() -> None:
    adv = experiment_model_config("fomm_vox256_adv")
    base = experiment_model_config("fomm_vox256")
    train = adv["train_params"]
    assert (train["num_epochs"], train["epoch_milestones"], train["batch_size"]) == (150, [], 36)
    assert train["loss_weights"]["generator_gan"] == 1
    assert adv["model_params"]["discriminator_params"] == {
        **base["model_params"]["discriminator_params"],
        "sn": False,
        "use_kp": True,
    }
    assert {
        k: v
        for k, v in train.items()
        if k not in ("num_epochs", "epoch_milestones", "batch_size", "loss_weights")
    } == {
        k: v
        for k, v in base["train_params"].items()
        if k not in ("num_epochs", "epoch_milestones", "batch_size", "loss_weights")
    }
