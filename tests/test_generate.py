"""The method interface: declarations, input checks, options, and generation through them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talking_heads.inference.run import generate_files, load_inputs
from talking_heads.models import METHODS, MethodSpec
from talking_heads.models.interface import (
    FAMILIES,
    INPUT_KINDS,
    InputError,
    MethodInput,
    MethodOption,
    check_inputs,
)
from talking_heads.utils.media import write_image, write_video


def test_every_family_declares_known_input_kinds_and_a_table() -> None:
    for name in FAMILIES.names():
        family = FAMILIES.get(name)
        assert family.table in {"table2", "table3"}, name
        assert {i.kind for i in family.inputs} <= set(INPUT_KINDS), name
    assert [i.kind for i in FAMILIES.get("lip-sync").inputs] == ["face", "audio", "emotion"]
    assert not FAMILIES.get("lip-sync").inputs[2].required
    with pytest.raises(ValueError, match="unknown input kind 'smell'"):
        MethodInput("smell")


def test_motion_methods_declare_source_and_driving_and_report_in_table2() -> None:
    for name in ("fomm", "mraa", "tpsm", "dagan", "fv2v"):
        spec = METHODS.get(name)
        assert spec.declaration.required_kinds == ["source", "driving"], name
        assert spec.report_table == "table2"
        assert {o.name for o in spec.declaration.options} >= {"relative", "adapt_scale"}


def test_input_check_names_the_missing_or_unexpected_input_and_the_method_inputs() -> None:
    lipsync = METHODS.get("fomm").declaration
    with pytest.raises(
        InputError, match=r"^fomm needs --driving; its inputs: --source, --driving$"
    ):
        check_inputs("fomm", lipsync, ["source"])
    with pytest.raises(InputError, match=r"^fomm does not take --audio; its inputs: --source, "):
        check_inputs("fomm", lipsync, ["source", "driving", "audio"])
    family = FAMILIES.get("lip-sync")
    from talking_heads.models.interface import MethodDeclaration

    declaration = MethodDeclaration(family, family.inputs)
    check_inputs("wav", declaration, ["face", "audio"])  # emotion is optional
    with pytest.raises(InputError, match=r"its inputs: --face, --audio, --emotion \(optional\)"):
        check_inputs("wav", declaration, ["face"])


def test_options_are_coerced_to_their_declared_types_and_checked() -> None:
    declaration = METHODS.get("tpsm").declaration
    options = declaration.resolve_options({"relative": "false", "best_frame": "7"})
    assert options["relative"] is False and options["best_frame"] == 7
    assert options["adapt_scale"] is True  # the default
    with pytest.raises(InputError, match="option relative: expected a bool, got 'maybe'"):
        declaration.resolve_options({"relative": "maybe"})
    with pytest.raises(InputError, match="option landmarks: 'sift' is not one of auto, fan, dlib"):
        declaration.resolve_options({"landmarks": "sift"})
    with pytest.raises(InputError, match="unknown option 'pose_style'; options: relative,"):
        declaration.resolve_options({"pose_style": 3})
    # a protocol's options for other families are ignored, not an error
    assert "pose_style" not in declaration.resolve_options({"pose_style": 3}, strict=False)
    assert MethodOption("still", False, "").coerce("yes") is True


def test_a_family_mismatch_is_refused_before_anything_is_loaded(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="fomm is a motion-transfer method, not lip-sync"):
        generate_files(
            "fomm", tmp_path / "absent.ckpt", {"face": "f.mp4"}, tmp_path / "o", family="lip-sync"
        )
    with pytest.raises(InputError, match="fomm needs --source"):
        generate_files("fomm", tmp_path / "absent.ckpt", {"driving": "d.mp4"}, tmp_path / "o")


def test_inputs_are_read_by_kind(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, size=(3, 48, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "clip.mp4", video, 30.0, crf=0)
    write_image(tmp_path / "still.png", video[0])
    np.save(tmp_path / "pose.npy", np.zeros((3, 3), np.float32))
    inputs = load_inputs(
        {
            "source": tmp_path / "clip.mp4",
            "face": tmp_path / "still.png",
            "pose": tmp_path / "pose.npy",
            "emotion": "happy",
        }
    )
    assert tuple(inputs.source.shape) == (3, 48, 64) and inputs.face.shape[0] == 1
    assert inputs.pose.shape == (3, 3) and inputs.emotion == "happy"
    assert inputs.given() == ["source", "face", "emotion", "pose"]
    with pytest.raises(InputError, match=r"still\.png is an image; driving needs a video"):
        load_inputs({"driving": tmp_path / "still.png"})
    with pytest.raises(FileNotFoundError, match=r"--audio .*nothing\.wav: no such file"):
        load_inputs({"audio": tmp_path / "nothing.wav"})


def test_a_registration_takes_its_family_declaration_unless_it_declares_its_own() -> None:
    spec = MethodSpec(
        name="talker",
        survey_name="Talker",
        family="audio-driven",
        lightning_module="m.Module",
        generator="m.Generator",
        default_experiment="talker_vox",
        inputs=(MethodInput("source"), MethodInput("audio"), MethodInput("pose", required=False)),
        options=(MethodOption("still", False, "keep the head still"),),
        table="table2",
    )
    assert spec.declaration.input_kinds == ["source", "audio", "pose"]
    assert spec.declaration.required_kinds == ["source", "audio"]
    assert [o.name for o in spec.declaration.options] == ["still"]
    assert spec.report_table == "table2" and spec.demo_experiment == "talker_demo"
