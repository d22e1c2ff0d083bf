"""``talking-heads import-checkpoint``: an official checkpoint converted into ours."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from talking_heads.cli.common import check_output


def _cmd_import_checkpoint(args: argparse.Namespace) -> None:
    from talking_heads.models import METHODS

    spec = METHODS.get(args.method)
    out = spec.import_official(args.official, check_output(args.out), args.experiment)
    print(f"{args.official} -> {out}")


def register(subparsers: Any) -> None:
    """Add ``import-checkpoint``."""
    p = subparsers.add_parser(
        "import-checkpoint", help="convert an official checkpoint of a method into ours"
    )
    p.add_argument("--method", required=True)
    p.add_argument("--official", type=Path, required=True, help="the authors' released file")
    p.add_argument("--out", type=Path, required=True, help="our checkpoint (.ckpt) to write")
    p.add_argument(
        "--experiment", default=None, help="Hydra experiment of the model (default: the method's)"
    )
    p.set_defaults(func=_cmd_import_checkpoint)
