"""``talking-heads``: the command-line interface every Snakemake rule calls."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from talking_heads.cli import (
    datasets,
    demo,
    inference,
    models,
    preprocess,
    registry,
    report,
    scoring,
    tracking,
    weights,
)
from talking_heads.cli.errors import guard

__all__ = ["COMMAND_GROUPS", "build_parser", "main"]

#: the modules adding the sub-commands (each one's ``register(subparsers)``), in help order
COMMAND_GROUPS = (
    demo,
    datasets,
    registry,
    preprocess,
    models,
    inference,
    scoring,
    weights,
    tracking,
    report,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per workflow step."""
    parser = argparse.ArgumentParser(prog="talking-heads", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an error, also of a mistake in the input",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``talking-heads`` command: a mistake in the input ends with one line
    on stderr and exit status 2 (see :mod:`talking_heads.cli.errors`)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return guard(f"talking-heads {args.command}", lambda: args.func(args), debug=args.debug)
