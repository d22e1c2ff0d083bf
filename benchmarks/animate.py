"""Animation throughput: our batched ``animate`` vs a per-frame loop like the official demos.

For each motion-transfer method the networks are built at their official vox-256 sizes (the
method's ``<method>_vox256`` experiment) with seeded random weights; both paths animate the
same source and driving frames with the same weights:

- per-frame (the official ``demo.py`` ``make_animation`` way): source and reference keypoints
  once, then for every driving frame the keypoint detector and the full generator, which
  re-encodes the source each time; default memory layout;
- ours (``MotionAnimator.animate``): the source encoded once, driving frames in batches of
  ``--batch-size``, networks and frames in channels-last layout; in fp32 (``batched``) and
  with mixed precision (``batched+amp``: fp16 autocast on CUDA, bf16 autocast on CPUs with
  native bf16, what ``talking-heads animate`` uses by default).

Each path runs in its own process (after one warm-up call) so that its peak memory is its
own: peak RSS on CPU, peak allocated CUDA memory on a GPU. The script prints frames/s of each,
the ratio, the peak memory, GFLOPs per frame (``torch.utils.flop_counter`` on one frame of the
batched path; grid_sample and softmax are not counted) and the PSNR between the two outputs.
Goals: ratio ≥ 1.5 on CPU and ≥ 3 on GPU, PSNR ≥ 45 dB.

    python benchmarks/animate.py [--methods fomm,tpsm] [--frames 8] [--batch-size 8]
        [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

PATHS = ("per-frame", "batched", "batched+amp")


def build_animator(method: str, device: str, *, official_loop: bool):
    """The method's animator at its vox-256 size with seeded random weights."""
    from talking_heads.config import experiment_model_config
    from talking_heads.models import METHODS

    spec = METHODS.get(method)
    hyper_parameters = experiment_model_config(spec.default_experiment)
    hyper_parameters["perceptual_pretrained"] = False
    animator_class = spec.generator_class()
    torch.manual_seed(0)
    networks = animator_class.build(hyper_parameters)
    animator = animator_class(
        networks,
        resolution=int(hyper_parameters.get("resolution", 256)),
        channels_last=not official_loop,
    )
    return animator.to(device)


def inputs(resolution: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth source and driving frames (random low-frequency images, seeded)."""
    generator = torch.Generator().manual_seed(1)
    small = torch.rand(frames + 1, 3, 16, 16, generator=generator)
    images = torch.nn.functional.interpolate(small, size=(resolution, resolution), mode="bicubic")
    images = images.clamp(0, 1)
    return images[0], images[1:]


def worker(args: argparse.Namespace) -> None:
    """One path in this process: time it, record peak memory, save its output."""
    official_loop = args.path == "per-frame"
    animator = build_animator(args.method, args.device, official_loop=official_loop)
    source, driving = inputs(animator.resolution, args.frames)
    options = (
        {"batch_size": 1, "reuse_source": False, "amp": False}
        if official_loop
        else {"batch_size": args.batch_size, "amp": args.path == "batched+amp"}
    )
    animator.animate(source, driving[:1], device=args.device, **options)  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    output = animator.animate(source, driving, device=args.device, **options)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if args.device.startswith("cuda"):
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"seconds": seconds, "frames": args.frames, "peak_mb": peak_mb}
    if args.path == "batched":
        result["gflops_per_frame"] = flops_per_frame(animator, source, driving[:1]) / 1e9
    torch.save(output, args.out)
    Path(args.out).with_suffix(".json").write_text(json.dumps(result))


def flops_per_frame(animator, source: torch.Tensor, frame: torch.Tensor) -> float:
    """FLOPs (2 per multiply-add) of generating one driving frame (source work excluded)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode():
        prepared = animator.prepare(
            animator.frames_on_device(source[None]), animator.frames_on_device(frame)
        )
        counter = FlopCounterMode(display=False)
        with counter:
            animator.generate(
                prepared, animator.frames_on_device(frame), relative=True, adapt_scale=True
            )
    return float(counter.get_total_flops())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def run_path(
    method: str, path: str, args: argparse.Namespace, work: Path
) -> tuple[dict, torch.Tensor]:
    out = work / f"{method}-{path.replace('+', '-')}.pt"
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            "--method",
            method,
            "--path",
            path,
            "--frames",
            str(args.frames),
            "--batch-size",
            str(args.batch_size),
            "--device",
            args.device,
            "--out",
            str(out),
        ],
        check=True,
    )
    return json.loads(out.with_suffix(".json").read_text()), torch.load(out, weights_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="fomm,mraa,tpsm,dagan,fv2v")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from talking_heads.models.motion.animate import autocast_dtype

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    amp = autocast_dtype(torch.device(args.device))
    print(
        f"device: {device_name}, torch threads {torch.get_num_threads()}, "
        f"{args.frames} driving frames, batch {args.batch_size}, amp dtype {amp}"
    )
    print(
        f"{'method':7} {'GFLOP/f':>7} | {'per-frame':>9} | {'batched':>7} {'ratio':>5} "
        f"{'PSNR':>5} | {'+amp':>7} {'ratio':>5} {'PSNR':>5} | peak MB (per-frame/batched/+amp)"
    )
    units = f"{'f/s':>7} {'':>5} {'dB':>5}"
    print(f"{'':7} {'':>7} | {'f/s':>9} | {units} | {units} |")
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            runs = {path: run_path(method, path, args, Path(tmp)) for path in PATHS}
            fps = {path: r["frames"] / r["seconds"] for path, (r, _) in runs.items()}
            baseline = runs["per-frame"][1]
            cells = []
            for path in PATHS[1:]:
                ratio = fps[path] / fps["per-frame"]
                cells.append(f"{fps[path]:7.2f} {ratio:5.2f} {psnr(runs[path][1], baseline):5.1f}")
            peaks = "/".join(f"{runs[path][0]['peak_mb']:.0f}" for path in PATHS)
            print(
                f"{method:7} {runs['batched'][0]['gflops_per_frame']:7.1f} | "
                f"{fps['per-frame']:9.2f} | {' | '.join(cells)} | {peaks}",
                flush=True,
            )


if __name__ == "__main__":
    main()
