"""``talking-heads report row|tables|figure``: the survey's tables and figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _cmd_row_spec(args: argparse.Namespace) -> None:
    from talking_heads.utils.atomic import atomic_write_json

    atomic_write_json(
        args.out,
        {
            "method": args.method,
            "table": args.table,
            "metrics_json": str(args.metrics),
            "data": args.data,
            "protocol": args.protocol,
            "checkpoint": args.checkpoint,
            "resolution": args.resolution,
        },
    )


def _cmd_report_tables(args: argparse.Namespace) -> None:
    from talking_heads.report.metrics import build_metrics_report
    from talking_heads.report.tables import build_result_tables

    rows = [json.loads(Path(spec).read_text()) for spec in args.row]
    for md, csv in build_result_tables(rows, args.out_dir).values():
        print(md, csv)
    print(*build_metrics_report(rows, args.out_dir))


def _cmd_report_figure(args: argparse.Namespace) -> None:
    from talking_heads.report.figures import comparison_figure

    generated = dict(item.split("=", 1) for item in args.generated)
    out = comparison_figure(
        args.source,
        args.driving,
        {k: Path(v) for k, v in generated.items()},
        args.out,
        num_frames=args.num_frames,
        title=args.title,
    )
    print(out)


def _cmd_report_lipsync_figure(args: argparse.Namespace) -> None:
    from talking_heads.report.lipsync_figure import lipsync_figure

    generated = dict(item.split("=", 1) for item in args.generated)
    out = lipsync_figure(
        args.reference,
        args.audio,
        {k: Path(v) for k, v in generated.items()},
        args.out,
        fps=args.fps,
        num_frames=args.num_frames,
        title=args.title,
    )
    print(out)


def register(subparsers: Any) -> None:
    """Add ``report row``, ``report tables`` and ``report figure``."""
    report = subparsers.add_parser("report", help="tables and figures").add_subparsers(
        dest="report_command", required=True
    )
    p = report.add_parser("row", help="describe one of our table rows (JSON)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--table", default="table2", help="the table the row goes to (its family's)")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--protocol", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--resolution", type=int, required=True)
    p.set_defaults(func=_cmd_row_spec)
    p = report.add_parser(
        "tables",
        help="Tables 2 and 3 (survey values beside ours, each row in its method's table) "
        "and the list of every metric",
    )
    p.add_argument("--row", action="append", default=[], help="row spec JSON (repeatable)")
    p.add_argument("--out-dir", type=Path, required=True)
    p.set_defaults(func=_cmd_report_tables)
    p = report.add_parser("figure", help="comparison figure: source | driving | generated")
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--driving", type=Path, required=True)
    p.add_argument("--generated", action="append", required=True, metavar="LABEL=VIDEO")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num-frames", type=int, default=5)
    p.add_argument("--title", default=None)
    p.set_defaults(func=_cmd_report_figure)
    p = report.add_parser(
        "lipsync-figure", help="lip-sync figure: real | generated frames, speech waveform"
    )
    p.add_argument("--reference", type=Path, required=True, help="the real face frames")
    p.add_argument("--audio", type=Path, required=True, help="the driving speech (wav)")
    p.add_argument("--generated", action="append", required=True, metavar="LABEL=VIDEO")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--num-frames", type=int, default=5)
    p.add_argument("--title", default=None)
    p.set_defaults(func=_cmd_report_lipsync_figure)
