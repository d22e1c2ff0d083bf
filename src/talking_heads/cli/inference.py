"""``talking-heads generate|animate|lipsync`` and ``protocol list|run``: generation with a
checkpoint.

``generate`` is the one entry point: one flag per input kind a method can declare
(:data:`talking_heads.models.interface.INPUT_KINDS`), ``--option key=value`` for the method's
options; what is given is checked against the method's declaration. ``animate`` is its
motion-transfer spelling (source + driving, with the motion options as flags) and ``lipsync``
its lip-sync one (face video + speech). The options of a generation command are added by small
functions (:func:`add_model_options`, :func:`add_motion_options`, :func:`add_run_options`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from talking_heads.cli.common import check_output, parse_param


def _cmd_animate(args: argparse.Namespace) -> None:
    from talking_heads.inference.run import animate_files

    check_output(args.out)
    stats = animate_files(
        args.method,
        args.checkpoint,
        args.source,
        args.driving,
        args.out,
        relative=args.relative,
        adapt_scale=args.adapt_scale,
        batch_size=args.batch_size,
        device=args.device,
        best_frame=args.best_frame,
        find_best=args.find_best_frame,
        landmarks=args.landmarks,
        amp=args.precision == "amp",
    )
    _print_stats(stats, args.out)


#: the input kinds given as a label rather than a file
LABEL_KINDS = frozenset({"emotion"})


def _given_inputs(args: argparse.Namespace, kinds: Iterable[str]) -> dict[str, Any]:
    """``{kind: path or label}`` of the input flags given on the command line."""
    return {k: getattr(args, k) for k in kinds if getattr(args, k, None) is not None}


def _print_stats(stats: Mapping[str, Any], out: Path) -> None:
    print(
        f"{stats['frames']} frames, {stats['frames_per_second']:.1f} frames/s on "
        f"{stats['device']} -> {out}"
    )


def _cmd_generate(args: argparse.Namespace, family: str | None = None) -> None:
    from talking_heads.inference.run import generate_files
    from talking_heads.models.interface import INPUT_KINDS

    check_output(args.out)
    stats = generate_files(
        args.method,
        args.checkpoint,
        _given_inputs(args, INPUT_KINDS),
        args.out,
        options=dict(args.option or []),
        batch_size=args.batch_size,
        device=args.device,
        amp=args.precision == "amp",
        family=family,
    )
    _print_stats(stats, args.out)


#: ``lipsync`` flags that set a lip-sync option (upstream ``inference.py``'s arguments)
LIPSYNC_FLAGS = ("box", "pads", "nosmooth", "resize_factor", "static", "detector")


def _cmd_lipsync(args: argparse.Namespace) -> None:
    options = list(args.option or [])
    for name in LIPSYNC_FLAGS:
        value = getattr(args, name)
        if value not in (None, False):
            options.append((name, ",".join(map(str, value)) if isinstance(value, list) else value))
    args.option = options
    _cmd_generate(args, family="lip-sync")


def add_lipsync_options(p: argparse.ArgumentParser) -> None:
    """Upstream ``inference.py``'s face-crop flags."""
    quad = {"nargs": 4, "type": int, "metavar": ("TOP", "BOTTOM", "LEFT", "RIGHT")}
    p.add_argument("--box", **quad, help="fixed face box instead of detection")
    p.add_argument("--pads", **quad, help="face box padding in px (default 0 10 0 0)")
    p.add_argument("--nosmooth", action="store_true", help="no 5-frame box smoothing")
    p.add_argument("--resize-factor", type=int, default=None, help="downscale the video first")
    p.add_argument("--static", action="store_true", help="use only the first face frame")
    p.add_argument(
        "--detector",
        default=None,
        choices=("auto", "sfd", "dlib_hog", "dlib_cnn"),
        help="face detector (auto: S3FD when its weights are present, else dlib HOG)",
    )


def _cmd_protocol_run(args: argparse.Namespace) -> None:
    from talking_heads.inference.protocols import load_protocol, run_protocol

    protocol = load_protocol(
        args.protocol, split=args.split, pairs_csv=args.pairs_csv, **dict(args.param or [])
    )
    summary = run_protocol(
        args.method,
        args.checkpoint,
        protocol,
        args.shards,
        args.out,
        batch_size=args.batch_size,
        device=args.device,
    )
    skipped = len(summary["records"]) - sum("file" in r for r in summary["records"])
    print(
        f"{protocol.name}: {summary['frames']} frames generated, {skipped} skipped, "
        f"{summary['frames_per_second']:.1f} frames/s -> {args.out}"
    )


def _cmd_protocol_list(args: argparse.Namespace) -> None:
    from talking_heads.inference.protocols import load_protocol, protocol_names

    for name in protocol_names():
        print(f"{name}: {load_protocol(name).label}")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--method`` and ``--checkpoint`` (one of our checkpoints)."""
    p.add_argument("--method", required=True)
    p.add_argument("--checkpoint", type=Path, required=True)


def add_motion_options(p: argparse.ArgumentParser) -> None:
    """The motion-transfer options: relative/absolute motion, scale adaptation and the
    reference driving frame."""
    p.add_argument(
        "--relative",
        dest="relative",
        action="store_true",
        default=True,
        help="relative motion (default)",
    )
    p.add_argument("--absolute", dest="relative", action="store_false", help="absolute motion")
    p.add_argument(
        "--adapt-scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="adapt the motion scale by convex-hull area (relative mode)",
    )
    p.add_argument(
        "--find-best-frame",
        action="store_true",
        help="use the driving frame whose face landmarks best match the source as the reference",
    )
    p.add_argument("--best-frame", type=int, default=None, help="reference driving frame")
    p.add_argument(
        "--landmarks",
        choices=("auto", "fan", "dlib"),
        default="auto",
        help="landmarks for --find-best-frame (fan: S3FD + 2D-FAN weights, as the demos)",
    )


def add_run_options(p: argparse.ArgumentParser, *, batch_size: int = 16) -> None:
    """``--precision``, ``--batch-size`` and ``--device``."""
    p.add_argument(
        "--precision",
        choices=("amp", "fp32"),
        default="amp",
        help="amp: fp16 on CUDA, bf16 on CPUs with native bf16 (default); fp32: exact",
    )
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")


def add_input_options(p: argparse.ArgumentParser, kinds: Iterable[str]) -> None:
    """One ``--<kind>`` flag per input kind (a file, or a label for :data:`LABEL_KINDS`)."""
    from talking_heads.models.interface import INPUT_KINDS

    for kind in kinds:
        label = kind in LABEL_KINDS
        p.add_argument(
            f"--{kind}",
            type=str if label else Path,
            default=None,
            metavar="LABEL" if label else "FILE",
            help=INPUT_KINDS[kind],
        )


def add_method_options(p: argparse.ArgumentParser) -> None:
    """``--option key=value`` (repeatable): one of the options the method declares."""
    p.add_argument(
        "--option",
        type=parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="a method option (`talking-heads list methods --options` shows each method's)",
    )


def _register_generate(subparsers: Any) -> None:
    from talking_heads.models.interface import INPUT_KINDS

    p = subparsers.add_parser(
        "generate",
        help="generate a video with any method from the inputs it declares",
        description="Give the inputs the method declares (`talking-heads list methods "
        "--inputs`); a missing or unexpected one is an error naming the method's inputs.",
    )
    add_model_options(p)
    add_input_options(p, INPUT_KINDS)
    p.add_argument("--out", type=Path, required=True, help=".mp4 file or a directory for PNGs")
    add_method_options(p)
    add_run_options(p)
    p.set_defaults(func=_cmd_generate)


def _register_lipsync(subparsers: Any) -> None:
    from talking_heads.models.interface import FAMILIES

    p = subparsers.add_parser(
        "lipsync",
        help="re-synthesise the mouth of a face video to match speech (lip-sync methods)",
    )
    add_model_options(p)
    add_input_options(p, [i.kind for i in FAMILIES.get("lip-sync").inputs])
    p.add_argument("--out", type=Path, required=True, help=".mp4 file or a directory for PNGs")
    add_lipsync_options(p)
    add_method_options(p)
    add_run_options(p)
    p.set_defaults(func=_cmd_lipsync)


def _register_animate(subparsers: Any) -> None:
    p = subparsers.add_parser("animate", help="animate a source portrait with a driving video")
    add_model_options(p)
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--driving", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help=".mp4 file or a directory for PNGs")
    add_motion_options(p)
    add_run_options(p)
    p.set_defaults(func=_cmd_animate)


def _register_protocol(subparsers: Any) -> None:
    protocol = subparsers.add_parser(
        "protocol", help="evaluation protocols (configs/protocol)"
    ).add_subparsers(dest="protocol_command", required=True)
    protocol.add_parser("list", help="the named protocols").set_defaults(func=_cmd_protocol_list)
    p = protocol.add_parser("run", help="run a protocol with a checkpoint over preprocessed shards")
    p.add_argument("--protocol", required=True, help="fomm_reconstruction, pairs_same_id, ...")
    add_model_options(p)
    p.add_argument("--shards", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", default=None, help="override the protocol's split")
    p.add_argument("--pairs-csv", default=None, help="pair list (DaGAN vox_evaluation.csv)")
    p.add_argument(
        "--param",
        type=parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="override a protocol setting (e.g. num_pairs=50)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_protocol_run)


def register(subparsers: Any) -> None:
    """Add ``generate``, ``animate``, ``lipsync`` and ``protocol list|run``."""
    _register_generate(subparsers)
    _register_animate(subparsers)
    _register_lipsync(subparsers)
    _register_protocol(subparsers)
