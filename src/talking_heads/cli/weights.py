"""``talking-heads weights list|fetch``: the pretrained weights registry."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _cmd_weights_list(args: argparse.Namespace) -> None:
    from talking_heads.weights import weights_dir, weights_status

    rows = weights_status(verify=args.verify)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"weights directory: {weights_dir()}")
    for row in rows:
        size = f"{row['size_bytes']:,} B" if row["size_bytes"] else "size unpublished"
        digest = row["sha256"] or "no published sha256 (unverified opt-in needed)"
        state = "present" if row["present"] else "missing"
        if row.get("verified") is not None:
            state += ", sha256 ok" if row["verified"] else ", SHA256 MISMATCH"
        print(
            f"{row['name']}: {row['file']} [{state}]\n  {row['used_by']}\n"
            f"  {row['url']}\n  {size}; sha256 {digest}"
        )


def _cmd_weights_fetch(args: argparse.Namespace) -> None:
    from talking_heads.weights import WEIGHTS, fetch_weights

    names = WEIGHTS.names() if args.all else args.names
    if not names:
        raise SystemExit("name the weights to fetch (see `talking-heads weights list`) or --all")
    failed = []
    for name in names:
        try:
            print(f"{name}: {fetch_weights(name)}")
        except Exception as error:  # one unreachable file must not stop the others
            failed.append(name)
            print(f"{name}: FAILED: {error}", file=sys.stderr)
    if failed:
        raise SystemExit(f"could not fetch: {', '.join(failed)}")


def register(subparsers: Any) -> None:
    """Add ``weights list`` and ``weights fetch``."""
    weights = subparsers.add_parser("weights", help="pretrained weights registry").add_subparsers(
        dest="weights_command", required=True
    )
    p = weights.add_parser("list", help="each file, its URL, size, hash and whether present")
    p.add_argument("--verify", action="store_true", help="hash the present files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_weights_list)
    p = weights.add_parser("fetch", help="download registered weights into the weights dir")
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=_cmd_weights_fetch)
