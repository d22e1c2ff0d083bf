"""Wav2Lip: our import + ``talking-heads lipsync`` against the official ``inference.py`` on
identical weights and inputs, with a fixed ``--box``.

    python benchmarks/parity/wav2lip.py --official-repo PATH/Wav2Lip \\
        [--checkpoint wav2lip.pth] [--seeds 0,1,2] [--box 10 120 40 150] [--work DIR]

The official side is upstream's ``inference.py`` itself, run in this process as its
``__main__`` with its own arguments (``--box``, so no detector is needed), on the demo's
``carphone`` clip (29.97 fps, 176×144) and the demo's 16 kHz speech. Its frames are taken
from the ``cv2.VideoWriter`` it writes to (before the lossy DIVX encoding) and its final
ffmpeg mux is skipped. Upstream pins librosa 0.7, whose ``librosa.filters.mel`` takes
positional arguments and whose STFT pads with ``reflect``; the shim below gives the installed
librosa those two behaviours, nothing else. Without ``--checkpoint`` the official ``Wav2Lip``
is built with each seed (BatchNorm statistics randomised) and saved as upstream's
``save_checkpoint`` does (``module.`` keys, ``optimizer``, ``global_step``, ``global_epoch``).
Ours is ``talking-heads import-checkpoint --experiment wav2lip_lrs2`` then ``talking-heads
lipsync --box ... --precision fp32`` to PNG frames. Exit status 0 when every frame of every
seed agrees within 2/255.
"""

from __future__ import annotations

import argparse
import contextlib
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

FACE = common.PROJECT_ROOT / "data" / "demo" / "videos" / "carphone.mp4"
SPEECH = common.PROJECT_ROOT / "data" / "demo" / "audio" / "speech.wav"


@contextlib.contextmanager
def librosa_07() -> object:
    """The two librosa 0.7 behaviours upstream's ``audio.py`` relies on."""
    import librosa

    mel, stft = librosa.filters.mel, librosa.stft

    def mel_positional(sr, n_fft=None, n_mels=128, fmin=0.0, fmax=None, **kw):
        return mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, **kw)

    def stft_reflect(*args, **kwargs):
        kwargs.setdefault("pad_mode", "reflect")
        return stft(*args, **kwargs)

    librosa.filters.mel, librosa.stft = mel_positional, stft_reflect
    try:
        yield
    finally:
        librosa.filters.mel, librosa.stft = mel, stft


class FrameCollector:
    """Stands in for ``cv2.VideoWriter``: keeps the BGR frames written to it."""

    frames: ClassVar[list[np.ndarray]] = []

    def __init__(self, *args: object) -> None:
        FrameCollector.frames = []

    def write(self, frame: np.ndarray) -> None:
        FrameCollector.frames.append(frame.copy())

    def release(self) -> None:
        pass


def run_official(
    repo: Path, checkpoint: Path, face: Path, audio: Path, box: list[int]
) -> np.ndarray:
    """Upstream ``inference.py``'s frames (RGB uint8) for these inputs."""
    import cv2

    argv = [
        "inference.py",
        "--checkpoint_path",
        str(checkpoint),
        "--face",
        str(face),
        "--audio",
        str(audio),
        "--outfile",
        str(checkpoint.parent / "result.mp4"),
        "--box",
        *map(str, box),
    ]
    writer, call, old_argv = cv2.VideoWriter, subprocess.call, sys.argv
    cv2.VideoWriter, subprocess.call, sys.argv = FrameCollector, lambda *a, **k: 0, argv
    try:
        with common.official_code(repo), librosa_07():
            runpy.run_path(str(repo / "inference.py"), run_name="__main__")
    finally:
        cv2.VideoWriter, subprocess.call, sys.argv = writer, call, old_argv
    return np.stack(FrameCollector.frames)[..., ::-1]


def official_weights(repo: Path, seed: int, out: Path) -> Path:
    """The official ``Wav2Lip`` with ``seed``, saved in upstream's checkpoint layout."""
    with common.official_code(repo):
        from models import Wav2Lip

        torch.manual_seed(seed)
        model = Wav2Lip()
        common.randomise_batchnorm_stats(model, seed=seed)
        state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "optimizer": None, "global_step": 0, "global_epoch": 0}, out)
    return out


def run_ours(checkpoint: Path, face: Path, audio: Path, box: list[int], work: Path) -> np.ndarray:
    from talking_heads.utils.media import read_frames

    ours, out = work / "ours.ckpt", work / "ours_frames"
    subprocess.run(
        [
            "talking-heads",
            "import-checkpoint",
            "--method",
            "wav2lip",
            "--official",
            str(checkpoint),
            "--experiment",
            "wav2lip_lrs2",
            "--out",
            str(ours),
        ],
        check=True,
    )
    subprocess.run(
        [
            "talking-heads",
            "lipsync",
            "--method",
            "wav2lip",
            "--checkpoint",
            str(ours),
            "--face",
            str(face),
            "--audio",
            str(audio),
            "--box",
            *map(str, box),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--batch-size",
            "128",
        ],
        check=True,
    )
    return read_frames(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="a released file (wav2lip.pth)")
    parser.add_argument("--seeds", type=common.parse_seeds, default=common.DEFAULT_SEEDS)
    parser.add_argument(
        "--box",
        type=int,
        nargs=4,
        default=[10, 120, 40, 150],
        metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
    )
    parser.add_argument("--face", type=Path, default=FACE)
    parser.add_argument("--audio", type=Path, default=SPEECH)
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here")
    args = parser.parse_args()
    if not args.face.is_file():
        subprocess.run(
            ["talking-heads", "demo", "build", "--out", str(FACE.parents[1])], check=True
        )
    # upstream tells images from videos by the text after the first dot of the path
    work = args.work or Path(tempfile.mkdtemp(prefix="parity_wav2lip_", dir="/tmp"))
    face = work / "face.mp4"
    face.write_bytes(args.face.read_bytes())
    worst = 0
    runs = (
        [("checkpoint", args.checkpoint)]
        if args.checkpoint
        else [(f"seed {seed}", None) for seed in args.seeds]
    )
    for label, checkpoint in runs:
        run_dir = work / label.replace(" ", "_")
        run_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint is None:
            checkpoint = official_weights(
                args.official_repo, int(label.split()[1]), run_dir / "wav2lip.pth"
            )
        official = run_official(args.official_repo, checkpoint, face, args.audio, args.box)
        ours = run_ours(checkpoint, face, args.audio, args.box, run_dir)
        worst = max(worst, common.largest_difference(f"wav2lip {label}", ours, official))
    print(f"largest difference over all runs: {worst}/255 (tolerance {common.TOLERANCE})")
    return 0 if worst <= common.TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
