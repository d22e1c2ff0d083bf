"""Every computed metric, one line per number, with the protocols and the metric behind it.

The survey's tables show a handful of columns; the scoring stage computes more (the survey's
section 5 metrics, offline variants, per-video statistics such as the AV offset). This
listing shows all of them for every scored run: the value, which metric computed it (and
whether that is the survey's metric or an offline variant), the generation and scoring
protocols, the number of videos and frames, skipped frames, and the quantities that could
not be computed with the reason (missing weights, no audio).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from talking_heads.utils.atomic import atomic_write_text

__all__ = ["METRICS_REPORT_COLUMNS", "build_metrics_report", "metrics_report_rows"]

METRICS_REPORT_COLUMNS = (
    "method",
    "data",
    "protocol",
    "scoring",
    "quantity",
    "output",
    "value",
    "better",
    "metric",
    "kind",
    "videos",
    "frames",
    "skipped",
    "note",
)


def _is_variant(quantity: str, metric: str | None) -> bool:
    return metric is not None and metric != quantity


def metrics_report_rows(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows for one scored run; ``spec`` is a Table 2 row spec (``talking-heads report row``)."""
    result = json.loads(Path(spec["metrics_json"]).read_text("utf-8"))
    described = result.get("metrics", {})
    inputs = result.get("inputs", {})
    scoring = result.get("scoring") or {}
    quantities = scoring.get("quantities") or {
        name: {"metric": name, "outputs": info.get("outputs", [name]), "passed_over": {}}
        for name, info in described.items()
    }
    demo = str(spec.get("data", "")).lower() == "demo"
    base = {
        "method": spec["method"],
        "data": spec.get("data", ""),
        "protocol": spec.get("protocol", ""),
        "scoring": scoring.get("label") or result.get("protocol", ""),
        "videos": inputs.get("num_videos"),
        "frames": inputs.get("num_frames"),
    }
    rows = []
    for quantity, choice in quantities.items():
        metric = choice.get("metric")
        if metric is None:
            reasons = "; ".join(f"{m}: {r}" for m, r in (choice.get("passed_over") or {}).items())
            rows.append({**base, "quantity": quantity, "kind": "not computed", "note": reasons})
            continue
        info = described.get(metric, {})
        kind = "offline variant" if _is_variant(quantity, metric) else "survey metric"
        if metric.endswith(("_skimage_default",)):
            kind = "harness variant"
        skipped = info.get("skipped_frames")
        if skipped is None and info.get("skipped_videos"):
            skipped = max(info["skipped_videos"].values())
        notes = []
        if choice.get("passed_over"):
            notes.append("; ".join(f"{m} unavailable" for m in choice["passed_over"]))
        if demo:
            notes.append("demo number")
        for output in choice.get("outputs") or [metric]:
            value = result["summary"].get(output)
            rows.append(
                {
                    **base,
                    "quantity": quantity,
                    "output": output,
                    "value": value,
                    "better": "↑" if info.get("higher_is_better", True) else "↓",
                    "metric": metric,
                    "kind": kind,
                    "skipped": skipped,
                    "note": "; ".join(notes),
                }
            )
    return rows


def _format(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.4f}"
    return str(value)


def build_metrics_report(
    specs: Sequence[Mapping[str, Any]], out_dir: Path | str
) -> tuple[Path, Path]:
    """Write ``out_dir/metrics.md`` and ``metrics.csv`` from Table 2 row specs."""
    import csv
    import io

    rows = [row for spec in specs for row in metrics_report_rows(spec)]
    header = [
        "# Every computed metric",
        "",
        "One line per number. `metric` is the registered metric that computed it: the survey's "
        "metric where its pretrained weights were present, otherwise an offline variant under "
        "its own name (not the survey's metric: compare such numbers only with each other). "
        "`protocol` is how the frames were generated, `scoring` how they were scored (frame "
        "size, selection, aggregation). Quantities that could not be computed say why. Rows "
        "marked 'demo number' come from the tiny embedded demo corpus: they show the pipeline "
        "works and are not comparable with published numbers.",
        "",
    ]
    columns = [c for c in METRICS_REPORT_COLUMNS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [_format(row.get(c)).replace("|", "\\|") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    out_dir = Path(out_dir)
    md = atomic_write_text(out_dir / "metrics.md", "\n".join(header + lines) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
    csv_path = atomic_write_text(out_dir / "metrics.csv", buffer.getvalue())
    return md, csv_path
