"""``talking-heads score`` (metrics of generated videos) and ``scoring list``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from talking_heads.cli.common import check_output, parse_param
from talking_heads.errors import UserError


def _one_or_many(paths: list[Path] | None) -> Path | list[Path] | None:
    """``None``, the one path given, or the list of them."""
    if not paths:
        return None
    return paths[0] if len(paths) == 1 else paths


def _check_audio_files(paths: list[Path]) -> None:
    """Each ``--audio`` file readable, before any video is scored (folders are checked per
    file as they are read)."""
    from talking_heads.preprocess.audio import check_audio

    for path in paths:
        if not path.is_dir():
            check_audio(path)


def _fill_from_protocol_run(args: argparse.Namespace) -> None:
    """``--generated``, ``--reference``, ``--audio`` and ``--source`` from the protocol run
    ``--inputs-from`` names (its ``score_inputs.json``), where not given on the command line."""
    if args.inputs_from is None:
        if args.generated is None:
            raise UserError("give --generated (generated videos) or --inputs-from (a protocol run)")
        if len(args.generated) == 1:
            args.generated = args.generated[0]
        return
    from talking_heads.inference.protocols import read_score_inputs

    inputs = read_score_inputs(args.inputs_from)
    args.generated = args.generated or inputs["generated"]
    if isinstance(args.generated, list) and len(args.generated) == 1:
        args.generated = args.generated[0]
    args.reference = args.reference or inputs["reference"]
    args.audio = args.audio or inputs["audio"]
    args.source = args.source or inputs["source"]


def _cmd_score(args: argparse.Namespace) -> None:
    from talking_heads.inference.run import pick_device
    from talking_heads.metrics.protocols import load_scoring, score_protocol
    from talking_heads.metrics.score import score, write_score

    check_output(args.out)
    _fill_from_protocol_run(args)
    _check_audio_files(args.audio or [])
    metrics = [m.strip() for m in (args.metrics or "").split(",") if m.strip()]
    reference = _one_or_many(args.reference)
    common = {
        "audio": _one_or_many(args.audio),
        "source": args.source,
        "device": pick_device(args.device),
        "batch_size": args.batch_size,
    }
    if args.scoring:
        protocol = load_scoring(args.scoring, **dict(args.scoring_param or []))
        result = score_protocol(protocol, args.generated, reference, only=metrics or None, **common)
    else:
        result = score(metrics or ["l1", "psnr", "ssim"], args.generated, reference, **common)
    if args.protocol:
        result["protocol"] = args.protocol
    write_score(args.out, result)
    print(json.dumps(result["summary"]))


def _cmd_scoring_list(args: argparse.Namespace) -> None:
    from talking_heads.metrics.protocols import load_scoring, scoring_names

    for name in scoring_names():
        protocol = load_scoring(name)
        quantities = ", ".join(
            f"{q} ({' > '.join(c)})" if len(c) > 1 else q for q, c in protocol.metrics.items()
        )
        print(f"{name}: {protocol.label}\n  {quantities}")


def _register_score(subparsers: Any) -> None:
    p = subparsers.add_parser("score", help="score generated videos against references")
    p.add_argument(
        "--metrics",
        default=None,
        help="comma-separated metric names (default l1,psnr,ssim); with --scoring, the "
        "protocol's quantities to compute (default: all)",
    )
    p.add_argument(
        "--scoring",
        default=None,
        help="scoring protocol (configs/scoring/<name>.yaml): frame size, frame selection, "
        "aggregation and the metric for each quantity, with offline fallbacks",
    )
    p.add_argument(
        "--scoring-param",
        type=parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="override a scoring protocol setting (e.g. size=128)",
    )
    p.add_argument(
        "--generated",
        type=Path,
        nargs="+",
        help="generated video, frame folder or folder(s) of videos",
    )
    p.add_argument(
        "--inputs-from",
        type=Path,
        metavar="RUN_DIR",
        help="a protocol run's output (`talking-heads protocol run --out`): its generated "
        "videos and the references, speech and portraits its score_inputs.json names",
    )
    p.add_argument(
        "--reference",
        type=Path,
        nargs="+",
        help="reference video, frame folder or folder(s) of videos matched by name "
        "(omit for no-reference metrics only)",
    )
    p.add_argument(
        "--audio",
        type=Path,
        nargs="+",
        help="speech for audio metrics (LSE, Beat Align): one file, or folder(s) of <stem>.wav",
    )
    p.add_argument(
        "--source",
        type=Path,
        help="source portrait for identity metrics (CSIM): one image, or a folder of "
        "<stem>.png (default: each reference video's first frame)",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--protocol", default=None, help="protocol label stored in the JSON")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_score)


def register(subparsers: Any) -> None:
    """Add ``scoring list`` and ``score``."""
    scoring = subparsers.add_parser("scoring", help="scoring protocols").add_subparsers(
        dest="scoring_command", required=True
    )
    scoring.add_parser("list", help="list configs/scoring protocols").set_defaults(
        func=_cmd_scoring_list
    )
    _register_score(subparsers)
