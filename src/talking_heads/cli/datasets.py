"""``talking-heads datasets``: the dataset registry, acquisition stages and Table 1."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from talking_heads.cli.common import parse_mirror


def _cmd_datasets_prepare(args: argparse.Namespace) -> None:
    from talking_heads.datasets import DATASETS, is_built

    if not is_built(args.name):
        raise ValueError(
            f"{args.name} is downloaded, not built: use `talking-heads datasets download "
            f"{args.name}`"
        )
    root = args.root or Path("data") / args.name
    print(DATASETS.get(args.name).prepare(root))


def _cmd_datasets_index(args: argparse.Namespace) -> None:
    from talking_heads.datasets.folder import index_folder

    print(index_folder(args.path, args.out, jobs=args.jobs, progress=not args.no_progress))


def _cmd_datasets_list(args: argparse.Namespace) -> None:
    from talking_heads.datasets import DATASETS

    for name in DATASETS.names():
        dataset = DATASETS.get(name)
        sources = ",".join(dataset.sources)
        subsets = ",".join(dataset.subsets)
        print(f"{name}\t{dataset.survey_name or '-'}\t{sources}\t{subsets}\t{dataset.description}")


def _acquire_context(args: argparse.Namespace, *, from_index: bool) -> Any:
    """Acquisition context from the command line; later stages take the shard count the
    index was built with."""
    from talking_heads.datasets import context_for

    ctx = context_for(
        args.name,
        raw_root=args.root,
        data_root=args.data_root,
        subsets=tuple(args.subset or ()),
        num_shards=args.num_shards,
        source=args.source,
        mirrors=dict(args.mirror or []),
        jobs=args.jobs,
        progress=not args.no_progress,
        retries=args.retries,
    )
    summary = ctx.raw_root / "index.json"
    if from_index and summary.exists():
        recorded = json.loads(summary.read_text("utf-8"))
        ctx.num_shards = int(recorded["num_shards"])
        ctx.subsets = tuple(recorded.get("subsets") or ctx.subsets)
        ctx.source = recorded.get("source") or ctx.source
    return ctx


def _cmd_datasets_download(args: argparse.Namespace) -> None:
    from talking_heads.datasets import DATASETS, is_built
    from talking_heads.datasets.base import run_all

    if is_built(args.name):
        raise ValueError(f"{args.name} is built locally: use `talking-heads datasets prepare`")
    print(run_all(DATASETS.get(args.name), _acquire_context(args, from_index=False)))


def _cmd_datasets_stage(args: argparse.Namespace) -> None:
    from talking_heads.datasets import DATASETS
    from talking_heads.datasets import base as acquire

    dataset = DATASETS.get(args.name)
    ctx = _acquire_context(args, from_index=args.stage != "index")
    if args.stage in ("download", "scan") and args.shard is None:
        raise ValueError(f"stage {args.stage} needs --shard")
    if args.shard is not None and not 0 <= args.shard < ctx.num_shards:
        raise ValueError(f"--shard {args.shard} outside 0..{ctx.num_shards - 1}")
    run = {
        "index": lambda: acquire.run_index(dataset, ctx),
        "download": lambda: acquire.run_download(dataset, ctx, args.shard),
        "assemble": lambda: acquire.run_assemble(dataset, ctx),
        "scan": lambda: acquire.run_scan(dataset, ctx, args.shard),
        "merge": lambda: acquire.run_merge(dataset, ctx),
    }[args.stage]
    print(run())


def _cmd_datasets_verify(args: argparse.Namespace) -> int:
    from talking_heads.datasets.verify import verify_dataset

    ctx = _acquire_context(args, from_index=True)
    report = verify_dataset(ctx)
    print(report["text"])
    return 0 if not report["problems"] else 1


def _cmd_datasets_stats(args: argparse.Namespace) -> None:
    from talking_heads.datasets import DATASETS, statistics_rows
    from talking_heads.report.tables import build_table1

    names = None if args.dataset is None else [DATASETS.get(n).name for n in args.dataset]
    md, csv = build_table1(statistics_rows(args.data_root, names), args.out)
    print(md, csv)


def _acquire_options() -> argparse.ArgumentParser:
    """The options every acquisition command shares (a parent parser)."""
    acquire = argparse.ArgumentParser(add_help=False)
    acquire.add_argument(
        "--root", type=Path, default=Path("data/raw"), help="raw data root (<root>/<name>)"
    )
    acquire.add_argument(
        "--data-root", type=Path, default=Path("data"), help="manifests go to <data-root>/<name>"
    )
    acquire.add_argument("--subset", action="append", help="subset to fetch (repeatable)")
    acquire.add_argument("--source", default=None, help="official, kaist, hf, youtube, ...")
    acquire.add_argument(
        "--mirror",
        type=parse_mirror,
        action="append",
        metavar="KEY=URL",
        help="override one of the dataset's URL bases (repeatable)",
    )
    acquire.add_argument("--num-shards", type=int, default=1, help="download/scan shards")
    acquire.add_argument("--jobs", type=int, default=4, help="parallel transfers per shard")
    acquire.add_argument("--retries", type=int, default=5, help="retries per transfer")
    acquire.add_argument("--no-progress", action="store_true", help="no progress bars")
    return acquire


def register(subparsers: Any) -> None:
    """Add ``datasets list|index|prepare|download|stage|verify|stats``."""
    datasets = subparsers.add_parser("datasets", help="dataset registry").add_subparsers(
        dest="datasets_command", required=True
    )
    datasets.add_parser("list", help="list registered datasets").set_defaults(
        func=_cmd_datasets_list
    )
    p = datasets.add_parser(
        "index", help="index your own media directory (videos, portraits, .wav, labels.csv)"
    )
    p.add_argument("kind", choices=["folder"], help="folder: a directory of your own media")
    p.add_argument("--path", type=Path, required=True, help="the media directory")
    p.add_argument(
        "--out", type=Path, required=True, help="where manifest.parquet goes (data/NAME)"
    )
    p.add_argument("--jobs", type=int, default=4, help="files probed at once")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_datasets_index)
    p = datasets.add_parser("prepare", help="build a local dataset (demo) and its manifest")
    p.add_argument("name")
    p.add_argument("--root", type=Path, default=None, help="default: data/<name>")
    p.set_defaults(func=_cmd_datasets_prepare)

    acquire = _acquire_options()
    p = datasets.add_parser(
        "download",
        parents=[acquire],
        help="fetch a dataset: every stage (index, download, assemble, scan, merge)",
    )
    p.add_argument("name", help="registered dataset (see `datasets list`)")
    p.set_defaults(func=_cmd_datasets_download)
    p = datasets.add_parser(
        "stage", parents=[acquire], help="run one acquisition stage (what the workflow calls)"
    )
    p.add_argument("stage", choices=["index", "download", "assemble", "scan", "merge"])
    p.add_argument("name", help="registered dataset (see `datasets list`)")
    p.add_argument("--shard", type=int, default=None)
    p.set_defaults(func=_cmd_datasets_stage)
    p = datasets.add_parser(
        "verify", parents=[acquire], help="re-check files against manifest checksums"
    )
    p.add_argument("name", help="registered dataset (see `datasets list`)")
    p.set_defaults(func=_cmd_datasets_verify)
    p = datasets.add_parser("stats", help="Table 1: survey values beside our manifests")
    p.add_argument("--data-root", type=Path, default=Path("data"))
    p.add_argument("--out", type=Path, default=Path("results/tables"))
    p.add_argument(
        "--dataset",
        action="append",
        default=None,
        help="read only these datasets' statistics (repeatable; default: every one present)",
    )
    p.set_defaults(func=_cmd_datasets_stats)
