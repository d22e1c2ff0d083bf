"""``talking-heads``: the command-line interface every Snakemake rule calls."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("talking_heads")


def _parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (numbers, booleans, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, yaml.safe_load(value)


def _parse_mirror(text: str) -> tuple[str, str]:
    """``key=url`` (a dataset URL base override)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=URL, got {text!r}")
    return key, value


def _cmd_demo_build(args: argparse.Namespace) -> None:
    from talking_heads.datasets.demo import build_demo_corpus

    manifest = build_demo_corpus(args.out)
    print(manifest)


def _cmd_datasets_prepare(args: argparse.Namespace) -> None:
    from talking_heads.datasets import DATASETS, is_built

    if not is_built(args.name):
        raise ValueError(
            f"{args.name} is downloaded, not built: use `talking-heads datasets download "
            f"{args.name}`"
        )
    root = args.root or Path("data") / args.name
    print(DATASETS.get(args.name).prepare(root))


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


def _cmd_preprocess(args: argparse.Namespace) -> None:
    from talking_heads.preprocess.recipes import run_shard

    params = dict(args.param or [])
    out = run_shard(
        args.manifest, args.recipe, params, args.shard, args.num_shards, args.out, force=args.force
    )
    print(out)


def _cmd_manifest_merge(args: argparse.Namespace) -> None:
    from talking_heads.manifest import merge_shard_manifests

    summary = merge_shard_manifests(args.shards, args.out, summary_path=args.summary)
    print(json.dumps(summary["by_status"]))


def _cmd_list_registry(args: argparse.Namespace) -> None:
    if args.registry == "methods":
        from talking_heads.models import METHODS

        for name in METHODS.names():
            spec = METHODS.get(name)
            print(f"{name}\t{spec.survey_name}\t{spec.family}\t{spec.default_experiment}")
    elif args.registry == "metrics":
        from talking_heads.metrics import METRICS

        for name in METRICS.names():
            print(f"{name}\t{METRICS.get(name).reference}")
    elif args.registry == "recipes":
        from talking_heads.preprocess.recipes import RECIPES

        print("\n".join(RECIPES.names()))
    elif args.registry == "tables":
        from talking_heads.report import TABLES

        print("\n".join(TABLES.names()))


def _cmd_import_checkpoint(args: argparse.Namespace) -> None:
    from talking_heads.models import METHODS

    out = METHODS.get(args.method).import_official(args.official, args.out, args.experiment)
    print(f"{args.official} -> {out}")


def _cmd_animate(args: argparse.Namespace) -> None:
    from talking_heads.inference.run import animate_files

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
    print(
        f"{stats['frames']} frames, {stats['frames_per_second']:.1f} frames/s on "
        f"{stats['device']} -> {args.out}"
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


def _cmd_score(args: argparse.Namespace) -> None:
    from talking_heads.inference.run import pick_device
    from talking_heads.metrics.protocols import load_scoring, score_protocol
    from talking_heads.metrics.score import score, write_score

    metrics = [m.strip() for m in (args.metrics or "").split(",") if m.strip()]
    reference = None
    if args.reference:
        reference = args.reference[0] if len(args.reference) == 1 else args.reference
    audio = None
    if args.audio:
        audio = args.audio[0] if len(args.audio) == 1 else args.audio
    common = {
        "audio": audio,
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


def _cmd_dvc_track(args: argparse.Namespace) -> None:
    from talking_heads.tracking import dvc_track

    for record in dvc_track(
        args.paths, push=args.push, outputs=args.outputs, timestamps=args.timestamps
    ):
        print(record)


def _cmd_report_table2(args: argparse.Namespace) -> None:
    from talking_heads.report.metrics import build_metrics_report
    from talking_heads.report.tables import build_table2

    rows = [json.loads(Path(spec).read_text()) for spec in args.row]
    md, csv = build_table2(rows, args.out_dir)
    print(md, csv, *build_metrics_report(rows, args.out_dir))


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


def _cmd_row_spec(args: argparse.Namespace) -> None:
    from talking_heads.utils.atomic import atomic_write_json

    atomic_write_json(
        args.out,
        {
            "method": args.method,
            "metrics_json": str(args.metrics),
            "data": args.data,
            "protocol": args.protocol,
            "checkpoint": args.checkpoint,
            "resolution": args.resolution,
        },
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per workflow step."""
    parser = argparse.ArgumentParser(prog="talking-heads", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the embedded demo corpus").add_subparsers(
        dest="demo_command", required=True
    )
    p = demo.add_parser("build", help="build data/demo from media shipped by PyPI packages")
    p.add_argument("--out", type=Path, default=Path("data/demo"))
    p.set_defaults(func=_cmd_demo_build)

    datasets = sub.add_parser("datasets", help="dataset registry").add_subparsers(
        dest="datasets_command", required=True
    )
    datasets.add_parser("list", help="list registered datasets").set_defaults(
        func=_cmd_datasets_list
    )
    p = datasets.add_parser("prepare", help="build a local dataset (demo) and its manifest")
    p.add_argument("name")
    p.add_argument("--root", type=Path, default=None, help="default: data/<name>")
    p.set_defaults(func=_cmd_datasets_prepare)

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
        type=_parse_mirror,
        action="append",
        metavar="KEY=URL",
        help="override one of the dataset's URL bases (repeatable)",
    )
    acquire.add_argument("--num-shards", type=int, default=1, help="download/scan shards")
    acquire.add_argument("--jobs", type=int, default=4, help="parallel transfers per shard")
    acquire.add_argument("--retries", type=int, default=5, help="retries per transfer")
    acquire.add_argument("--no-progress", action="store_true", help="no progress bars")

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

    p = sub.add_parser("list", help="list a registry: methods, metrics, recipes, tables")
    p.add_argument("registry", choices=["methods", "metrics", "recipes", "tables"])
    p.set_defaults(func=_cmd_list_registry)

    p = sub.add_parser("preprocess", help="run a preprocessing recipe on one shard")
    p.add_argument("--manifest", type=Path, required=True, help="dataset manifest (parquet)")
    p.add_argument("--recipe", required=True)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="shard output directory")
    p.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="recipe parameter (repeatable)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute a shard already complete for the same recipe, parameters and input",
    )
    p.set_defaults(func=_cmd_preprocess)

    manifest = sub.add_parser("manifest", help="manifest tools").add_subparsers(
        dest="manifest_command", required=True
    )
    p = manifest.add_parser("merge", help="merge shard manifests into one table + summary")
    p.add_argument("shards", type=Path, nargs="+", help="shard directories")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--summary", type=Path, default=None)
    p.set_defaults(func=_cmd_manifest_merge)

    p = sub.add_parser(
        "import-checkpoint", help="convert an official checkpoint of a method into ours"
    )
    p.add_argument("--method", required=True)
    p.add_argument("--official", type=Path, required=True, help="the authors' released file")
    p.add_argument("--out", type=Path, required=True, help="our checkpoint (.ckpt) to write")
    p.add_argument(
        "--experiment", default=None, help="Hydra experiment of the model (default: the method's)"
    )
    p.set_defaults(func=_cmd_import_checkpoint)

    p = sub.add_parser("animate", help="animate a source portrait with a driving video")
    p.add_argument("--method", required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--driving", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help=".mp4 file or a directory for PNGs")
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
        "--precision",
        choices=("amp", "fp32"),
        default="amp",
        help="amp: fp16 on CUDA, bf16 on CPUs with native bf16 (default); fp32: exact",
    )
    p.add_argument(
        "--landmarks",
        choices=("auto", "fan", "dlib"),
        default="auto",
        help="landmarks for --find-best-frame (fan: S3FD + 2D-FAN weights, as the demos)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=_cmd_animate)

    protocol = sub.add_parser(
        "protocol", help="evaluation protocols (configs/protocol)"
    ).add_subparsers(dest="protocol_command", required=True)
    protocol.add_parser("list", help="the named protocols").set_defaults(func=_cmd_protocol_list)
    p = protocol.add_parser("run", help="run a protocol with a checkpoint over preprocessed shards")
    p.add_argument("--protocol", required=True, help="fomm_reconstruction, pairs_same_id, ...")
    p.add_argument("--method", required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--shards", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", default=None, help="override the protocol's split")
    p.add_argument("--pairs-csv", default=None, help="pair list (DaGAN vox_evaluation.csv)")
    p.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="override a protocol setting (e.g. num_pairs=50)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_protocol_run)

    scoring = sub.add_parser("scoring", help="scoring protocols").add_subparsers(
        dest="scoring_command", required=True
    )
    scoring.add_parser("list", help="list configs/scoring protocols").set_defaults(
        func=_cmd_scoring_list
    )

    weights = sub.add_parser("weights", help="pretrained weights registry").add_subparsers(
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

    p = sub.add_parser("score", help="score generated videos against references")
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
        type=_parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="override a scoring protocol setting (e.g. size=128)",
    )
    p.add_argument("--generated", type=Path, required=True)
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

    dvc = sub.add_parser("dvc", help="DVC tracking").add_subparsers(
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

    report = sub.add_parser("report", help="tables and figures").add_subparsers(
        dest="report_command", required=True
    )
    p = report.add_parser("row", help="describe one of our table rows (JSON)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--protocol", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--resolution", type=int, required=True)
    p.set_defaults(func=_cmd_row_spec)
    p = report.add_parser(
        "table2", help="Table 2 (survey values beside ours) and the list of every metric"
    )
    p.add_argument("--row", action="append", default=[], help="row spec JSON (repeatable)")
    p.add_argument("--out-dir", type=Path, required=True)
    p.set_defaults(func=_cmd_report_table2)
    p = report.add_parser("figure", help="comparison figure: source | driving | generated")
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--driving", type=Path, required=True)
    p.add_argument("--generated", action="append", required=True, metavar="LABEL=VIDEO")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num-frames", type=int, default=5)
    p.add_argument("--title", default=None)
    p.set_defaults(func=_cmd_report_figure)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``talking-heads`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = args.func(args)
    except (KeyError, FileNotFoundError, ValueError) as error:
        # user-facing problems (unknown registry name, missing weights or data): one clear line
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        if args.verbose:
            raise
        print(f"talking-heads {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
