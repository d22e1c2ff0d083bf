"""``talking-heads dvc track``: DVC tracking of artefact folders."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _cmd_dvc_track(args: argparse.Namespace) -> None:
    from talking_heads.tracking import dvc_track

    for record in dvc_track(
        args.paths, push=args.push, outputs=args.outputs, timestamps=args.timestamps
    ):
        print(record)


def register(subparsers: Any) -> None:
    """Add ``dvc track``."""
    dvc = subparsers.add_parser("dvc", help="DVC tracking").add_subparsers(
        dest="dvc_command", required=True
    )
    p = dvc.add_parser("track", help="dvc add artifact folders (one .dvc each) and push")
    p.add_argument("paths", type=Path, nargs="+")
    p.add_argument("--push", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--outputs",
        type=Path,
        nargs="*",
        default=[],
        help="declared workflow outputs whose timestamps are recorded",
    )
    p.add_argument(
        "--timestamps",
        type=Path,
        default=None,
        help="where to record them (committed with the .dvc files)",
    )
    p.set_defaults(func=_cmd_dvc_track)
