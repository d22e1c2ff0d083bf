"""Lip-sync speed: ``talking-heads lipsync``'s pipeline against a loop written like Wav2Lip's
``inference.py``, same weights and inputs, in one run.

    python benchmarks/lipsync.py [--face VIDEO] [--audio WAV] [--repeats 2] [--device cpu]
        [--detect-every 1,5] [--scale 1] [--out benchmarks/results/lipsync_<device>.json]

The upstream-style loop: every frame through S3FD in batches of 16, pads 0/10/0/0, the
5-frame box smoothing, the 80×16 mel chunks, generation in batches of 128 as upstream's
``datagen``, paste-back. Ours: :class:`Wav2LipGenerator.synthesize` with batch 128 and
``detect_every`` 1 (every frame, as upstream) and N (detection on every N-th frame, boxes
interpolated). Both use the published Wav2Lip generator size (random weights: speed does not
depend on their values) and the same S3FD network: upstream's ``s3fd-619a316812.pth`` from the
weights directory when present; without it a randomly initialised S3FD still runs on every
frame it is given (so its cost is real) and the box it would have found is replaced by
``--box`` (random weights find no faces). Printed and written: frames/s of each, the ratios
ours/upstream, peak memory (RSS or CUDA), the largest pixel difference to the upstream-style
output. The face is the demo's carphone clip by default.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FACE = ROOT / "data" / "demo" / "videos" / "carphone.mp4"
SPEECH = ROOT / "data" / "demo" / "audio" / "speech.wav"


class S3FDBoxes:
    """S3FD on every frame given; its detections, or ``box`` when its weights are random."""

    name = "sfd"

    def __init__(self, device: str, box: tuple[int, int, int, int] | None) -> None:
        from talking_heads.nets.s3fd import S3FD

        self.box = box
        self.net = S3FD().eval().to(device)
        if box is None:
            from talking_heads.nets import load_pretrained

            self.net = load_pretrained(S3FD, "s3fd").to(device)
        self.calls = 0

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        from talking_heads.nets.s3fd import detect_faces

        self.calls += len(frames)
        found = detect_faces(self.net, frames, 0.5)
        if self.box is None:
            return found
        top, bottom, left, right = self.box
        return [np.array([[left, top, right, bottom, 1.0]], np.float32)] * len(frames)


def upstream_loop(
    frames: np.ndarray, mels: np.ndarray, net: torch.nn.Module, detector: S3FDBoxes, device: str
) -> np.ndarray:
    """Wav2Lip ``inference.py``'s steps, written out (BGR frames in, BGR frames out)."""
    import cv2

    from talking_heads.models.lipsync.inference import smooth_boxes

    rects = []
    for begin in range(0, len(frames), 16):  # face_detect: batches of 16, every frame
        rgb = np.ascontiguousarray(frames[begin : begin + 16][..., ::-1])
        for dets in detector.detect(rgb):
            rects.append([int(v) for v in np.clip(dets[0][:4], 0, None)])
    height, width = frames.shape[1:3]
    boxes = np.array(
        [
            [max(0, x1), max(0, y1 - 0), min(width, x2), min(height, y2 + 10)]
            for x1, y1, x2, y2 in rects
        ]
    )
    boxes = smooth_boxes(boxes, 5)
    frames = frames[: len(mels)]
    out = []
    for begin in range(0, len(mels), 128):  # datagen: batches of 128
        index = list(range(begin, min(begin + 128, len(mels))))
        crops, coords = [], []
        for i in index:
            x1, y1, x2, y2 = boxes[i % len(frames)]
            crops.append(cv2.resize(frames[i % len(frames)][y1:y2, x1:x2], (96, 96)))
            coords.append((y1, y2, x1, x2))
        img = np.asarray(crops)
        masked = img.copy()
        masked[:, 48:] = 0
        x = np.concatenate((masked, img), axis=3) / 255.0
        x = torch.FloatTensor(np.transpose(x, (0, 3, 1, 2))).to(device)
        m = torch.FloatTensor(mels[index][:, None]).to(device)
        with torch.no_grad():
            pred = net(m, x).cpu().numpy().transpose(0, 2, 3, 1) * 255.0
        for i, p, (y1, y2, x1, x2) in zip(index, pred, coords, strict=True):
            frame = frames[i % len(frames)].copy()
            frame[y1:y2, x1:x2] = cv2.resize(p.astype(np.uint8), (x2 - x1, y2 - y1))
            out.append(frame)
    return np.stack(out)


def peak_memory(device: str) -> float:
    """Peak GPU memory allocated (GB) on CUDA, else this process's peak RSS (GB)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--face", type=Path, default=FACE)
    parser.add_argument("--audio", type=Path, default=SPEECH)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--detect-every", default="1,5")
    parser.add_argument("--box", type=int, nargs=4, default=[10, 120, 40, 150])
    parser.add_argument(
        "--scale", type=int, default=1, help="upscale the face video (4: carphone at 704x576)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from talking_heads.inference.run import load_inputs
    from talking_heads.models.lipsync.generate import mel_chunks
    from talking_heads.models.lipsync.networks import Wav2LipUNet
    from talking_heads.models.wav2lip.generate import Wav2LipGenerator
    from talking_heads.weights import weights_dir

    inputs = load_inputs({"face": args.face, "audio": args.audio})
    if args.scale > 1:
        inputs.face = torch.nn.functional.interpolate(
            inputs.face, scale_factor=args.scale, mode="bilinear", align_corners=False
        ).clamp(0, 1)
        args.box = [v * args.scale for v in args.box]
    real_s3fd = (weights_dir() / "s3fd-619a316812.pth").is_file()
    detector = S3FDBoxes(args.device, None if real_s3fd else tuple(args.box))
    torch.manual_seed(0)
    net = Wav2LipUNet().eval().to(args.device)
    generator = Wav2LipGenerator(net)
    generator.detector_factory = staticmethod(lambda name, notes: detector)
    bgr = (inputs.face.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()[..., ::-1]
    mels = mel_chunks(inputs.audio, inputs.fps)
    results: dict[str, dict] = {}

    def timed(label: str, run) -> np.ndarray:
        best, out = float("inf"), None
        for _ in range(args.repeats):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = run()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        results[label] = {
            "seconds": best,
            "frames_per_second": len(out) / best,
            "peak_memory_gb": peak_memory(args.device),
        }
        return out

    reference = timed(
        "upstream-style loop",
        lambda: upstream_loop(np.ascontiguousarray(bgr), mels, net, detector, args.device),
    )
    for every in (int(v) for v in args.detect_every.split(",")):
        label = f"ours (detect_every {every})"
        frames = timed(
            label,
            lambda every=every: generator.synthesize(
                inputs,
                {"detect_every": every, "detector": "sfd"},
                batch_size=128,
                device=args.device,
            ),
        )
        ours = (frames.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()[..., ::-1]
        diff = np.abs(ours.astype(int) - reference.astype(int))
        results[label]["max_pixel_difference"] = int(diff.max())
        results[label]["ratio"] = (
            results[label]["frames_per_second"]
            / results["upstream-style loop"]["frames_per_second"]
        )
    print(
        f"{len(mels)} frames of {args.face.name} ({bgr.shape[2]}x{bgr.shape[1]}) on "
        f"{args.device}, S3FD weights {'released' if real_s3fd else 'random (boxes from --box)'}"
    )
    for label, row in results.items():
        extra = (
            f", ratio {row['ratio']:.2f}x, max pixel difference {row['max_pixel_difference']}"
            if "ratio" in row
            else ""
        )
        print(
            f"{label}: {row['frames_per_second']:.1f} frames/s, peak memory "
            f"{row['peak_memory_gb']:.2f} GB{extra}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "device": args.device,
            "torch": torch.__version__,
            "frames": len(mels),
            "threads": torch.get_num_threads(),
            "released_s3fd": real_s3fd,
        }
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
