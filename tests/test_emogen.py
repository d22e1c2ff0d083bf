"""EmoGen: official state-dict layouts, checkpoint import, the three training stages, the
emotion conditioning, the colour augmentation and the 95/5 split.

``tests/data/official_layouts/emogen.json`` lists the key → shape layouts of sahilg06/EmoGen's
own ``models.Wav2Lip``, ``models.emo_disc.DISCEMO`` and ``models.SyncNet_color``.
"""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from conftest import PROJECT_ROOT
from motion_testing import official_layouts, quiet_trainer, shapes
from random_weights import randomise
from talking_heads.models.checkpoints import CheckpointLayoutError, read_checkpoint
from talking_heads.models.emogen import checkpoint as emogen_checkpoint
from talking_heads.models.emogen.augment import augment
from talking_heads.models.emogen.data import clip_emotion, emogen_split
from talking_heads.models.emogen.discemo import DISCEMO, emotion_disc_optimizer, load_emotion_disc
from talking_heads.models.emogen.generate import EmoGenGenerator
from talking_heads.models.emogen.module import EmoGenLightning
from talking_heads.models.emogen.perceptual import PerceptionLoss
from talking_heads.models.interface import InputError
from talking_heads.models.lipsync.networks import SyncNetColor, Wav2LipUNet
from talking_heads.models.wav2lip import checkpoint as wav2lip_checkpoint

LAYOUT = official_layouts("emogen")["emogen"]


def experiment(name: str) -> dict:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3"):
        cfg = compose("train.yaml", overrides=[f"experiment={name}"])
    return OmegaConf.to_container(cfg, resolve=False)


def synthetic_batch(batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch shaped as :class:`LipSyncWindowDataModule` gives it."""
    g = torch.Generator().manual_seed(seed)
    window = torch.rand(batch, 3, 5, 96, 96, generator=g)
    return {
        "window": window,
        "wrong": torch.rand(batch, 3, 5, 96, 96, generator=g),
        "mel": torch.randn(batch, 1, 80, 16, generator=g),
        "indiv_mels": torch.randn(batch, 5, 1, 80, 16, generator=g),
        "expert_faces": torch.cat(window[:, :, :, 48:].unbind(2), dim=1),
        "expert_label": torch.ones(batch, 1),
        "emotion": torch.eye(6)[torch.arange(batch) % 6],
    }


class Batches(torch.utils.data.Dataset):
    def __init__(self, count: int) -> None:
        self.items = [
            {k: v[0] for k, v in synthetic_batch(1, seed=i).items()} for i in range(count)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.items[index]


def small_module(**overrides) -> EmoGenLightning:
    kwargs = {
        "width": 8,
        "expert": {"steps": 2},
        "emotion_disc": {"steps": 2, "lr": 1e-3},
        "train": {"syncnet_wt_initial": 0.03},
        "perceptual_pretrained": False,
        "perceptual_width": 8,
    }
    kwargs.update(overrides)
    return EmoGenLightning(**kwargs)


# -- (a) layouts ------------------------------------------------------------------------------
def test_generator_discemo_and_expert_have_the_official_layouts() -> None:
    assert shapes(Wav2LipUNet(1, 6)) == LAYOUT["generator"]
    assert shapes(DISCEMO()) == LAYOUT["emotion_disc"]
    assert shapes(SyncNetColor()) == LAYOUT["expert"]
    # upstream's names: conv_1..conv_5, projector, rnn_1, cls
    assert {k.split(".")[0] for k in LAYOUT["emotion_disc"]} == {
        *(f"conv_{i}" for i in range(1, 6)),
        "projector",
        "rnn_1",
        "cls",
    }


def test_discemo_classifies_windows_and_has_upstreams_optimiser() -> None:
    disc = DISCEMO(width=8)
    assert disc(torch.rand(3, 3, 5, 96, 96)).shape == (3, 6)
    opt, scheduler = emotion_disc_optimizer(disc)
    group = opt.param_groups[0]
    assert group["lr"] == 1e-6 and group["betas"] == (0.5, 0.999)
    assert scheduler.step_size == 150 and scheduler.gamma == 0.1


def test_discemo_loads_raw_and_train_py_state_dicts(tmp_path) -> None:
    torch.manual_seed(3)
    source = DISCEMO(width=8)
    raw = tmp_path / "disc_emo_1000.pth"
    torch.save(source.state_dict(), raw)
    wrapped = tmp_path / "disc_emo_checkpoint_step000010000.pth"
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save(
        {"state_dict": state, "optimizer": None, "global_step": 1, "global_epoch": 0}, wrapped
    )
    for path in (raw, wrapped):
        loaded = load_emotion_disc(path, DISCEMO(width=8))
        for key, value in source.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
    module = small_module(emotion_disc={"checkpoint": str(raw), "steps": 50})
    assert module.emotion_disc_steps == 0
    assert torch.equal(module.emotion_disc.cls[0].weight, source.cls[0].weight)
    with pytest.raises(CheckpointLayoutError, match="emotion_disc"):
        load_emotion_disc(raw, DISCEMO(width=4))


# -- (b) checkpoint import --------------------------------------------------------------------
def official_file(path, network: torch.nn.Module) -> None:
    state = {f"module.{k}": v for k, v in network.state_dict().items()}
    torch.save({"state_dict": state, "optimizer": None, "global_step": 42, "global_epoch": 3}, path)


def test_official_layout_file_imports_and_reproduces_the_generator(tmp_path) -> None:
    torch.manual_seed(5)
    network = Wav2LipUNet(8, 6).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "checkpoint_step000042000.pth"
    official_file(path, network)
    assert emogen_checkpoint.claims(torch.load(path, weights_only=True))
    assert not wav2lip_checkpoint.claims(torch.load(path, weights_only=True))

    out = emogen_checkpoint.import_official(path, tmp_path / "emogen.ckpt", {"width": 8})
    checkpoint = read_checkpoint(out)
    assert checkpoint["hyper_parameters"]["emotions"] == 6
    generator = EmoGenGenerator.from_checkpoint(out)
    assert generator.mask_whole_face
    faces = torch.rand(3, 3, 96, 96)
    mels = torch.randn(3, 80, 16)
    masked = faces.clone()
    masked[:] = 0  # the whole face, as EmoGen's inference.py
    one_hot = torch.eye(6)[[3, 3, 3]]
    with torch.no_grad():
        expected = network(mels[:, None], torch.cat([masked, faces], 1), one_hot)
        got = generator.predict(faces, mels, "happy")
    assert torch.equal(got, expected)


def test_a_wav2lip_generator_is_refused_as_such(tmp_path) -> None:
    path = tmp_path / "wav2lip.pth"
    official_file(path, Wav2LipUNet(8, 0))
    assert not emogen_checkpoint.claims(torch.load(path, weights_only=True))
    with pytest.raises(CheckpointLayoutError, match="a Wav2Lip generator"):
        emogen_checkpoint.import_official(path, tmp_path / "out.ckpt", {"width": 8})


# -- (c) training -----------------------------------------------------------------------------
def test_generator_objective_is_upstreams_weighted_sum() -> None:
    torch.manual_seed(0)
    module = small_module()
    total, parts, generated = module.generator_losses(synthetic_batch())
    assert {"l1", "sync", "emo", "perceptual"} <= set(parts)
    assert generated.shape == (2, 3, 5, 96, 96)
    expected = (
        0.03 * parts["sync"]
        + 0.01 * parts["perceptual"]
        + 0.01 * parts["emo"]
        + (1 - 0.03 - 0.01 - 0.01) * parts["l1"]
    )
    assert torch.allclose(total, expected)
    assert parts["perceptual"] > 0 and parts["emo"] > 0


def test_perceptual_loss_uses_the_five_max_pool_outputs() -> None:
    loss = PerceptionLoss(pretrained=False)
    features = loss.feature_list(torch.rand(1, 3, 96, 96))
    assert [tuple(f.shape[1:]) for f in features] == [
        (64, 48, 48),
        (128, 24, 24),
        (256, 12, 12),
        (512, 6, 6),
        (512, 3, 3),
    ]
    window = torch.rand(1, 3, 5, 96, 96)
    assert loss(window, window) == 0
    assert loss(window, torch.rand(1, 3, 5, 96, 96)) > 0


class Snapshots(pl.Callback):
    """The parameters after each training step."""

    def __init__(self) -> None:
        self.after: dict[int, dict[str, torch.Tensor]] = {}
        self.logged: dict[int, set[str]] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        self.after[step] = {k: v.detach().clone() for k, v in module.named_parameters()}
        self.logged[step] = {k for k in trainer.callback_metrics if k.startswith("train/")}


def test_three_stages_train_every_network_with_finite_losses() -> None:
    torch.manual_seed(1)
    module = small_module()
    snapshots = Snapshots()
    start = {k: v.detach().clone() for k, v in module.named_parameters()}
    trainer = quiet_trainer(max_steps=6, callbacks=[snapshots])
    trainer.fit(module, DataLoader(Batches(4), batch_size=2))
    assert trainer.global_step == 6
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for name in ("loss", "l1", "sync", "emo", "perceptual", "emotion_disc_real"):
        assert np.isfinite(metrics[f"train/{name}"]), name
    assert metrics["train/perceptual"] > 0 and metrics["train/emo"] > 0
    assert snapshots.logged[2] == {"train/expert_loss"}
    assert "train/emotion_disc_loss" in snapshots.logged[4]
    assert "train/emo" not in snapshots.logged[4]

    def changed(old, new, prefix):
        return any(not torch.equal(old[k], new[k]) for k in old if k.startswith(prefix))

    expert, disc, after = snapshots.after[2], snapshots.after[4], snapshots.after[6]
    # steps 0-1: the expert only; 2-3: DISCEMO only; 4-5: the generator, and DISCEMO on
    # the ground truth (train.py), the expert frozen
    assert changed(start, expert, "expert.")
    assert not changed(start, expert, "generator.") and not changed(start, expert, "emotion_")
    assert changed(expert, disc, "emotion_disc.")
    assert not changed(expert, disc, "expert.") and not changed(expert, disc, "generator.")
    assert changed(disc, after, "generator.") and changed(disc, after, "emotion_disc.")
    assert not changed(disc, after, "expert.")
    # DISCEMO's StepLR: stepped after the one epoch (steps 2-3) of its own stage only
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == 1


def test_configs_hold_emogens_hparams() -> None:
    cfg = experiment("emogen_cremad")
    model = cfg["model"]
    assert model["_target_"] == "talking_heads.models.emogen.module.EmoGenLightning"
    assert model["emotions"] == 6 and model["width"] == 1
    train = model["train"]
    assert train["lr"] == 1e-4 and train["betas"] == [0.5, 0.999]
    assert (train["syncnet_wt_initial"], train["syncnet_wt"], train["sync_threshold"]) == (
        0.0,
        0.03,
        0.75,
    )
    assert train["emo_wt"] == 0.01 and train["pl_wt"] == 0.01 and train["disc_wt"] == 0.0
    assert model["emotion_disc"]["lr"] == 1e-6
    assert model["perceptual_pretrained"] is True
    assert cfg["data"]["batch_size"] == 16
    assert cfg["data"]["shards_dir"].endswith("results/preprocessed/cremad/wav2lip")
    demo = experiment("emogen_demo")
    assert demo["model"]["perceptual_pretrained"] is False
    assert demo["trainer"]["max_steps"] <= 40


# -- (d) emotion conditioning -----------------------------------------------------------------
def test_the_emotion_changes_the_output_and_an_unknown_one_is_refused() -> None:
    torch.manual_seed(7)
    generator = EmoGenGenerator(randomise(Wav2LipUNet(8, 6), seed=7))
    faces, mels = torch.rand(2, 3, 96, 96), torch.randn(2, 80, 16)
    with torch.no_grad():
        happy = generator.predict(faces, mels, "happy")
        sad = generator.predict(faces, mels, "SAD")
        assert torch.equal(happy, generator.predict(faces, mels, "HAP"))
        other_audio = generator.predict(faces, torch.randn(2, 80, 16), "happy")
    # the emotion moves the output as much as the audio does (bottleneck inputs alike)
    assert (happy - sad).abs().mean() > 0.3 * (happy - other_audio).abs().mean() > 0
    with pytest.raises(InputError, match="unknown emotion 'bored'"):
        generator.predict(faces, mels, "bored")
    with pytest.raises(InputError, match="needs --emotion"):
        generator.predict(faces, mels, None)


# -- (e) augmentation -------------------------------------------------------------------------
def test_augmentation_applies_one_colour_transform_to_all_ten_frames() -> None:
    frame = torch.rand(3, 1, 96, 96)
    window = frame.expand(3, 5, 96, 96).clone()
    applied = 0
    for seed in range(12):
        out_window, out_wrong = augment(window, window.clone(), np.random.default_rng(seed))
        assert out_window.shape == window.shape and out_wrong.shape == window.shape
        assert out_window.min() >= 0 and out_window.max() <= 1
        frames = torch.cat([out_window, out_wrong], dim=1)
        assert torch.equal(frames, frames[:, :1].expand_as(frames))  # one transform for all 10
        applied += not torch.equal(out_window, window)
    # the pipeline fires with probability 0.8: most draws change the frames, not all
    assert 6 <= applied < 12


def test_augmentation_maps_equal_colours_of_target_and_reference_alike() -> None:
    """Target and reference frames get one draw: the same colour in a frame of each comes out
    the same (uniform frames, so CLAHE acts alike; draws with noise are left out)."""
    colours = torch.rand(3, 5, 1, 1).expand(3, 5, 96, 96)
    window, wrong = colours.clone(), colours[:, [1, 0, 3, 2, 4]].clone()
    checked = 0
    for seed in range(30):
        out_window, out_wrong = augment(window, wrong, np.random.default_rng(seed))
        if torch.equal(out_window, window) or out_window.flatten(2).std(-1).max() > 0:
            continue  # not augmented, or with Gaussian noise
        assert torch.equal(out_window[:, [1, 0, 3, 2, 4]], out_wrong)
        checked += 1
    assert checked >= 5


# -- data conventions -------------------------------------------------------------------------
def test_split_reproduces_random_split_with_seed_42() -> None:
    ids = [
        f"VideoFlash/{1001 + i % 91}_IEO_ANG_HI" if i % 2 else f"x/{i:04d}_A_SAD_XX"
        for i in range(203)
    ]
    split = emogen_split(ids)
    names = sorted(set(ids), key=lambda c: (c.rsplit("/", 1)[-1], c))
    n = len(names)
    _, test = torch.utils.data.random_split(
        range(n), [int(0.95 * n), n - int(0.95 * n)], generator=torch.Generator().manual_seed(42)
    )
    assert {names[i] for i in test.indices} == {c for c, s in split.items() if s == "val"}
    assert sum(s == "train" for s in split.values()) == int(0.95 * n)
    assert clip_emotion("VideoFlash/1001_DFA_ANG_XX") == "ANG"
    assert clip_emotion("demo/clip_01") is None
