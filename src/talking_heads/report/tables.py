"""The survey's Tables 1-3 with our measurements beside them (Markdown + CSV).

The survey's values are package data (``talking_heads/report/survey/*.csv``) and are copied
into the outputs verbatim, as printed. Our rows are read from the metrics JSON files written
by ``talking-heads score``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from talking_heads.registry import Registry
from talking_heads.utils.atomic import atomic_write_text

__all__ = [
    "TABLE2_COLUMNS",
    "TABLE2_METRICS",
    "TABLES",
    "TableSpec",
    "build_result_tables",
    "build_table1",
    "build_table2",
    "build_table3",
    "our_row",
    "our_table2_row",
    "survey_table",
]

MISSING = "—"
SURVEY_SOURCE = "survey (paper)"
OURS_SOURCE = "ours"


@dataclass(frozen=True)
class TableSpec:
    """One of the survey's tables: its packaged values and the function that builds it."""

    name: str
    title: str
    survey_csv: str
    build: Callable[[Sequence[Mapping[str, Any]], Path], tuple[Path, Path]]


TABLES: Registry[TableSpec] = Registry("table")


def survey_table(filename: str) -> list[dict[str, str]]:
    """Rows of a packaged survey CSV, every value the string printed in the survey."""
    text = resources.files("talking_heads.report").joinpath("survey", filename).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@dataclass(frozen=True)
class _Metric:
    key: str
    label: str
    higher_is_better: bool
    decimals: int

    @property
    def header(self) -> str:
        return f"{self.label} {'↑' if self.higher_is_better else '↓'}"


#: Table 2's metric columns, in the survey's order, with its printed precision
TABLE2_METRICS: tuple[_Metric, ...] = (
    _Metric("l1", "L1", False, 4),
    _Metric("lpips", "LPIPS", False, 4),
    _Metric("psnr", "PSNR", True, 3),
    _Metric("ssim", "SSIM", True, 4),
    _Metric("akd", "AKD", False, 3),
    _Metric("aed", "AED", False, 4),
)
_TABLE2_LABELS: tuple[str, ...] = (
    "method",
    "source",
    "data",
    "protocol",
    "checkpoint",
    "resolution",
)
TABLE2_COLUMNS: tuple[str, ...] = (*_TABLE2_LABELS, *(m.key for m in TABLE2_METRICS))
_TABLE2_SURVEY = {
    "source": SURVEY_SOURCE,
    "data": "VoxCeleb1 (inferred)",
    "resolution": "256 (inferred)",
    "protocol": "DaGAN/MCNet same-id pairs (inferred)",
    "checkpoint": "as published",
}


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
    return buffer.getvalue()


def _format_value(value: Any, decimals: int) -> str:
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        return value  # a survey value: exactly as printed
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    return f"{round(number, decimals) + 0.0:.{decimals}f}"  # + 0.0: no "-0.00"


def our_table2_row(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One of our Table 2 rows from its spec (:func:`our_row` with Table 2's metrics)."""
    return our_row(spec, TABLE2_METRICS)


def our_row(spec: Mapping[str, Any], metrics: Sequence[_Metric]) -> dict[str, Any]:
    """One of our table rows from its spec, with the ``metrics`` columns.

    ``spec``: ``method``, ``metrics_json`` (a ``talking-heads score`` output), ``data``,
    ``protocol``, ``checkpoint``, ``resolution`` (frame side in pixels) and optionally
    ``metric_names`` mapping a column to the metric that fills it (e.g.
    ``{"ssim": "ssim_skimage_default"}``); by default the metric a scoring protocol chose
    for each quantity (e.g. the offline ``akd_dlib`` where AKD's weights were absent, which
    the notes then name). Values are the metric means of the JSON's ``summary``; a metric
    not computed stays ``None``.
    """
    for key in ("method", "metrics_json", "data"):
        if key not in spec:
            raise ValueError(f"table row spec lacks {key!r}: {dict(spec)}")
    metrics_json = Path(spec["metrics_json"])
    result = json.loads(metrics_json.read_text("utf-8"))
    if "summary" not in result:
        raise ValueError(f"{metrics_json}: no 'summary' (not a talking-heads score output)")
    summary = result["summary"]
    scoring = result.get("scoring") or {}
    names = {
        quantity: choice["outputs"][0]
        for quantity, choice in (scoring.get("quantities") or {}).items()
        if choice.get("metric") and choice.get("outputs")
    }
    names.update(spec.get("metric_names") or {})
    protocol = spec.get("protocol", "")
    if scoring.get("label"):
        protocol = f"{protocol}; scored: {scoring['label']}" if protocol else scoring["label"]
    row: dict[str, Any] = {
        "method": f"{spec['method']} (ours, {spec['data']})",
        "source": OURS_SOURCE,
        "data": str(spec["data"]),
        "protocol": protocol,
        "checkpoint": spec.get("checkpoint", ""),
        "resolution": spec.get("resolution", ""),
    }
    for metric in metrics:
        value = summary.get(names.get(metric.key, metric.key))
        row[metric.key] = None if value is None else float(value)
    row["_metrics_json"] = str(metrics_json)
    row["_metric_names"] = {m.key: names.get(m.key, m.key) for m in metrics}
    row["_inputs"] = result.get("inputs", {})
    return row


def _table2_note(ours: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "# Table 2: video-driven methods",
        "",
        f'Rows with source "{SURVEY_SOURCE}" are the survey\'s Table 2 as printed: all six '
        "metric columns of those rows are survey values. Rows with source "
        f'"{OURS_SOURCE}" are our measurements, read from the metrics JSON named below. '
        f"↑: higher is better; ↓: lower is better; {MISSING}: not computed.",
        "",
        "- Demo rows come from the tiny embedded demo corpus (a few low-resolution clips) and "
        "are not comparable with the paper's numbers; they show that the pipeline runs.",
        "- Protocol: the survey does not say how Table 2 was measured. Its metrics are most "
        "likely the DaGAN/MCNet harness's same-identity VoxCeleb1 pairs at 256x256 (2,083 "
        "source/driving frame pairs). Our rows use the protocol named in their protocol "
        "column (FOMM's reconstruction protocol: every frame of a clip re-generated from its "
        "frame 0).",
        "- SSIM variants differ: that harness used scikit-image `compare_ssim` defaults "
        "(7x7 uniform window, sample covariance, data range 2 on [0, 1] frames; our "
        "`ssim_skimage_default`), which reads higher than Gaussian SSIM (our `ssim`).",
        "- The survey's PSNR for MRAA, TPSM and DaGAN++ (~31 dB) is far from the other rows "
        "(~23 dB) at similar L1, which suggests values computed in different ways.",
    ]
    if ours:
        lines += [
            "",
            "Our rows (each names the metric behind every column: where it differs from the "
            "column, e.g. `akd_dlib` for AKD, the survey metric's pretrained weights were "
            "absent and an offline variant computed it; such a value is not comparable with "
            "the survey's; `metrics.md` lists every computed metric):",
            "",
        ]
        for row in ours:
            used = ", ".join(
                f"{k} = `{v}`" for k, v in row["_metric_names"].items() if row.get(k) is not None
            )
            inputs = row.get("_inputs") or {}
            extent = ""
            if "num_videos" in inputs:
                extent = f"; {inputs['num_videos']} videos, {inputs.get('num_frames')} frames"
            lines.append(
                f"- {row['method']}: `{row['_metrics_json']}`{extent}; metrics: {used or 'none'}"
            )
    return "\n".join(lines) + "\n"


def build_table2(rows: Sequence[Mapping[str, Any]], out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``out_dir/table2.md`` and ``out_dir/table2.csv``: the survey's rows, then ours.

    Each of ``rows`` is a spec for :func:`our_table2_row`. The CSV holds survey values as
    printed, our values at full precision, and an empty cell where a metric was not
    computed; the Markdown rounds ours to the survey's precision and shows "—" there.
    """
    out_dir = Path(out_dir)
    survey = [{**r, **_TABLE2_SURVEY} for r in survey_table("table2_video_driven.csv")]
    ours = [our_table2_row(spec) for spec in rows]
    all_rows = survey + ours
    headers = [c.capitalize() for c in _TABLE2_LABELS] + [m.header for m in TABLE2_METRICS]
    body = [
        [
            *(row.get(c) or "" for c in _TABLE2_LABELS),
            *(_format_value(row.get(m.key), m.decimals) for m in TABLE2_METRICS),
        ]
        for row in all_rows
    ]
    markdown = _table2_note(ours) + "\n" + _markdown_table(headers, body)
    md_path = atomic_write_text(out_dir / "table2.md", markdown)
    csv_rows = [
        {c: (repr(v) if isinstance(v, float) else v) for c, v in row.items()} for row in all_rows
    ]
    csv_path = atomic_write_text(out_dir / "table2.csv", _csv_text(TABLE2_COLUMNS, csv_rows))
    return md_path, csv_path


#: known problems with the printed Table 1, footnoted in the output (sources: the datasets'
#: papers and release files; see ``report/survey/README.md``)
TABLE1_NOTES: dict[str, str] = {
    "CREMA-D": "11.1 h cannot be recomputed from the released 16 kHz WAVs (about 5.3 h); "
    "12 counts distinct sentences of 7,442 clips; head movement is mild",
    "LRW": "published at ACCV 2016; 539k counts clips (538,766) of 500 words",
    "VoxCeleb1": "153.5K is VoxCeleb1's utterance count (153,516), not sentences",
    "VoxCeleb2": "1.1M counts utterances (1,128,246) of 6,112 speakers",
    "MEAD": "60 speakers recorded, 48 public; 20 is not a sentence count (281.4k clips over "
    "7 views)",
    "HDTF": "362 counts videos, not speakers; the annotation files list 369 YouTube ids and "
    "436 intervals (about 17 h)",
}
TABLE1_OURS_COLUMNS: tuple[str, ...] = (
    "ours_dataset",
    "ours_status",
    "ours_hours",
    "ours_speakers",
    "ours_utterances",
    "ours_head_movement",
    "ours_source",
)


def _table1_ours(stats: Mapping[str, Any] | None, registered: str | None) -> dict[str, Any]:
    """Our side of one Table 1 row from a ``statistics.json`` (None: not downloaded)."""
    if registered is None:
        return {"ours_dataset": "", "ours_status": "not in the workflow"}
    if not stats or stats.get("hours") is None:
        return {"ours_dataset": registered, "ours_status": "not downloaded"}
    ok, rows = stats.get("clips_ok"), stats.get("clips_total")
    status = "downloaded"
    if ok is not None and rows:
        status = f"downloaded: {ok:,}/{rows:,} clips ok ({100 * ok / rows:.1f} %)"
    return {
        "ours_dataset": registered,
        "ours_status": status,
        "ours_hours": round(float(stats["hours"]), 2),
        "ours_speakers": "" if stats.get("speakers") is None else int(stats["speakers"]),
        "ours_utterances": "" if stats.get("utterances") is None else int(stats["utterances"]),
        "ours_head_movement": stats.get("head_movement", ""),
        "ours_source": stats.get("source", ""),
    }


def build_table1(rows: Sequence[Mapping[str, Any]], out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``table1.md``/``table1.csv``: the survey's dataset table beside our statistics.

    ``rows`` are statistics of our copies (``data/<name>/statistics.json`` as written by
    the acquisition pipeline's merge stage, with ``survey_name`` naming the Table 1 row and
    ``dataset`` our registry name); a row with no ``hours`` marks a registered dataset not
    downloaded yet. Survey rows without a registered dataset say "not in the workflow".
    Known errors in the printed table are footnoted.
    """
    survey = survey_table("table1_datasets.csv")
    names = {r["name"] for r in survey}
    unknown = [r.get("survey_name") for r in rows if r.get("survey_name") not in names]
    if unknown:
        raise ValueError(f"statistics for rows the survey's Table 1 lacks: {unknown}")
    ours = {r["survey_name"]: r for r in rows}
    table = []
    footnotes: list[str] = []
    for row in survey:
        stats = ours.get(row["name"])
        registered = None if stats is None else str(stats.get("dataset", row["name"]))
        note = TABLE1_NOTES.get(row["name"], "")
        marker = ""
        if note:
            footnotes.append(note)
            marker = f"[{len(footnotes)}]"
        table.append({**row, **_table1_ours(stats, registered), "note": note, "_marker": marker})
    columns = [*survey[0].keys(), *TABLE1_OURS_COLUMNS, "note"]
    headers = [
        "Dataset",
        "Year",
        "Hours",
        "Speakers",
        "Sentences",
        "Head movement",
        "Source",
        "Ours: dataset",
        "Ours: status",
        "Ours: hours",
        "Ours: speakers",
        "Ours: utterances",
        "Ours: head movement",
        "Ours: source",
    ]
    body = [
        [
            f"{r['name']} {r['_marker']}".strip(),
            *(r[c] for c in list(survey[0])[1:]),
            *(r.get(c, "") if r.get(c, "") != "" else MISSING for c in TABLE1_OURS_COLUMNS),
        ]
        for r in table
    ]
    note = (
        "# Table 1: datasets\n\nLeft: the survey's Table 1 as printed (source: survey "
        "(paper)). Right: the same quantities computed from our manifests (ok clips only): "
        "hours = summed clip durations, speakers = distinct speaker ids, utterances = clips. "
        'A registered dataset not fetched yet reads "not downloaded"; rows the workflow has '
        f'no dataset module for read "not in the workflow"; {MISSING}: no value. Our numbers '
        "count what was actually obtained (dead links and licensed parts reduce them), so "
        "they are a coverage report as much as a statistic.\n\n"
    )
    notes = "\n".join(f"[{i}] {text}" for i, text in enumerate(footnotes, start=1))
    out_dir = Path(out_dir)
    md_path = atomic_write_text(
        out_dir / "table1.md",
        note
        + _markdown_table(headers, body)
        + "\nKnown problems with the printed values:\n\n"
        + notes
        + "\n",
    )
    csv_path = atomic_write_text(out_dir / "table1.csv", _csv_text(columns, table))
    return md_path, csv_path


#: the quality columns of our Table 3 rows (the survey's Table 3 has none; its quality
#: numbers are scattered over the methods' papers): lip sync, realism, identity
TABLE3_METRICS: tuple[_Metric, ...] = (
    _Metric("lse_d", "LSE-D", False, 3),
    _Metric("lse_c", "LSE-C", True, 3),
    _Metric("fid", "FID", False, 2),
    _Metric("csim", "CSIM", True, 4),
)
_TABLE3_SURVEY_COLUMNS: tuple[str, ...] = ("inference_time_s", "gpu_memory_gb", "rating")
_TABLE3_SURVEY = {
    "source": SURVEY_SOURCE,
    "data": "not stated",
    "protocol": "not stated",
    "checkpoint": "as published",
    "resolution": "not stated",
    "device": "Tesla T4",
}
TABLE3_COLUMNS: tuple[str, ...] = (
    "method",
    "year",
    "source",
    "data",
    "protocol",
    "checkpoint",
    "resolution",
    *_TABLE3_SURVEY_COLUMNS,
    "device",
    *(m.key for m in TABLE3_METRICS),
)


def _table3_note(ours: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "# Table 3: hardware and rating",
        "",
        f'Rows with source "{SURVEY_SOURCE}" are the survey\'s Table 3 as printed, measured '
        'on a Tesla T4 with unstated clip length, resolution and timing scope; "4 min 50 '
        'Sec" is written as 290 s and "DaGANs" as DaGAN. Rows with source '
        f'"{OURS_SOURCE}" are the methods whose family reports here (lip-sync and '
        "audio-driven), with the quality metrics of their scoring protocol; their inference "
        "time, memory and rating are measured by the workflow's bench and rating study, "
        f"{MISSING} until those have run. Rows whose source names a paper are that paper's "
        "own quality numbers (time, memory and rating not reported there). ↑: higher is "
        "better; ↓: lower is better.",
    ]
    if ours:
        lines += ["", "Our rows:", ""]
        for row in ours:
            used = ", ".join(
                f"{k} = `{v}`" for k, v in row["_metric_names"].items() if row.get(k) is not None
            )
            lines.append(f"- {row['method']}: `{row['_metrics_json']}`; metrics: {used or 'none'}")
    return "\n".join(lines) + "\n"


def paper_quality_rows() -> list[dict[str, Any]]:
    """The methods' own papers' lip-sync quality numbers (``report/papers``), as Table 3
    rows without time, memory or rating."""
    text = resources.files("talking_heads.report").joinpath("papers", "table3_quality.csv")
    rows = list(csv.DictReader(io.StringIO(text.read_text("utf-8"))))
    for row in rows:
        row.update(checkpoint="as published", resolution="96", device="")
        for metric in TABLE3_METRICS:
            row[metric.key] = float(row[metric.key]) if row.get(metric.key) else None
    return rows


def build_table3(rows: Sequence[Mapping[str, Any]], out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``table3.md``/``table3.csv``: the survey's hardware table, then our rows.

    Each of ``rows`` is a spec for :func:`our_row` (a model of a method reported in Table
    3), shown with :data:`TABLE3_METRICS`.
    """
    survey = [{**r, **_TABLE3_SURVEY} for r in survey_table("table3_hardware_rating.csv")]
    survey += paper_quality_rows()
    ours = [our_row(spec, TABLE3_METRICS) for spec in rows]
    headers = [
        "Method",
        "Year",
        "Source",
        "Data",
        "Protocol",
        "Checkpoint",
        "Resolution",
        "Inference time (s) ↓",
        "GPU memory (GB) ↓",
        "Rating ↑",
        "Device",
        *(m.header for m in TABLE3_METRICS),
    ]
    body = [
        [
            *(row.get(c) or "" for c in TABLE3_COLUMNS[:7]),
            *(row.get(c) or MISSING for c in (*_TABLE3_SURVEY_COLUMNS, "device")),
            *(_format_value(row.get(m.key), m.decimals) for m in TABLE3_METRICS),
        ]
        for row in [*survey, *ours]
    ]
    out_dir = Path(out_dir)
    md_path = atomic_write_text(
        out_dir / "table3.md", _table3_note(ours) + "\n" + _markdown_table(headers, body)
    )
    csv_rows = [
        {c: (repr(v) if isinstance(v, float) else v) for c, v in row.items()}
        for row in [*survey, *ours]
    ]
    csv_path = atomic_write_text(out_dir / "table3.csv", _csv_text(TABLE3_COLUMNS, csv_rows))
    return md_path, csv_path


def build_result_tables(
    rows: Sequence[Mapping[str, Any]], out_dir: Path | str
) -> dict[str, tuple[Path, Path]]:
    """Every results table (:data:`RESULT_TABLES`) from our row specs, each spec in the table
    its ``table`` field names (``table2`` when absent); a table with no rows of ours still
    shows the survey's."""
    by_table: dict[str, list[Mapping[str, Any]]] = {name: [] for name in RESULT_TABLES}
    for spec in rows:
        table = str(spec.get("table") or "table2")
        if table not in by_table:
            raise ValueError(
                f"row {spec.get('method')!r} names table {table!r}; "
                f"results tables: {', '.join(RESULT_TABLES)}"
            )
        by_table[table].append(spec)
    return {name: TABLES.get(name).build(specs, out_dir) for name, specs in by_table.items()}


TABLES.add("table1", TableSpec("table1", "Datasets", "table1_datasets.csv", build_table1))
TABLES.add(
    "table2", TableSpec("table2", "Video-driven methods", "table2_video_driven.csv", build_table2)
)
TABLES.add(
    "table3", TableSpec("table3", "Hardware and rating", "table3_hardware_rating.csv", build_table3)
)
#: the tables our model rows go to (Table 1 is built from the datasets' statistics)
RESULT_TABLES: tuple[str, ...] = ("table2", "table3")
