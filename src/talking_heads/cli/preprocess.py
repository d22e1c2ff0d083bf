"""``talking-heads preprocess`` (one shard of a recipe) and ``manifest merge``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from talking_heads.cli.common import parse_param


def _cmd_preprocess(args: argparse.Namespace) -> None:
    from talking_heads.preprocess.recipes import run_shard

    params = dict(args.param or [])
    out = run_shard(
        args.manifest,
        args.recipe,
        params,
        args.shard,
        args.num_shards,
        args.out,
        force=args.force,
        preset=args.preset,
    )
    print(out)


def _cmd_manifest_merge(args: argparse.Namespace) -> None:
    from talking_heads.manifest import merge_shard_manifests

    summary = merge_shard_manifests(args.shards, args.out, summary_path=args.summary)
    print(json.dumps(summary["by_status"]))


def register(subparsers: Any) -> None:
    """Add ``preprocess`` and ``manifest merge``."""
    p = subparsers.add_parser("preprocess", help="run a preprocessing recipe on one shard")
    p.add_argument("--manifest", type=Path, required=True, help="dataset manifest (parquet)")
    p.add_argument("--recipe", required=True)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="shard output directory")
    p.add_argument(
        "--param",
        type=parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="recipe parameter (repeatable; applied over --preset)",
    )
    p.add_argument(
        "--preset",
        default=None,
        help="recipe parameter preset (configs/recipe/<name>.yaml), e.g. inference: keep your "
        "own clips that the training filters would reject",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute a shard already complete for the same recipe, parameters and input",
    )
    p.set_defaults(func=_cmd_preprocess)

    manifest = subparsers.add_parser("manifest", help="manifest tools").add_subparsers(
        dest="manifest_command", required=True
    )
    p = manifest.add_parser("merge", help="merge shard manifests into one table + summary")
    p.add_argument("shards", type=Path, nargs="+", help="shard directories")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--summary", type=Path, default=None)
    p.set_defaults(func=_cmd_manifest_merge)
