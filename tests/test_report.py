"""Report: the survey's tables beside ours, and the figures."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from talking_heads.report import TABLES, build_table2, survey_table
from talking_heads.report.figures import (
    comparison_figure,
    comparison_figure_size,
    frame_indices,
    metrics_bar_figure,
)
from talking_heads.report.tables import (
    TABLE2_COLUMNS,
    build_result_tables,
    build_table1,
    build_table3,
)
from talking_heads.utils.media import write_frames_dir, write_image, write_video

# the survey's Table 2, as printed
SURVEY_TABLE2 = [
    ("Bilayer", "0.1753", "0.5733", "12.802", "0.3201", "13.83", "0.0564"),
    ("PIRender", "0.0574", "0.2225", "21.154", "0.6564", "2.249", "0.0321"),
    ("FOMM", "0.0451", "0.1479", "23.422", "0.7521", "1.456", "0.0247"),
    ("Face vid2vid", "0.0456", "0.1395", "23.279", "0.7487", "1.615", "0.0258"),
    ("MRAA", "0.0511", "0.2620", "30.892", "0.7807", "1.796", "0.0213"),
    ("DaGAN", "0.0468", "0.1465", "23.449", "0.7564", "1.546", "0.0257"),
    ("TPSM", "0.0527", "0.2540", "30.632", "0.7822", "1.703", "0.0210"),
    ("DaGAN++", "0.0469", "0.2440", "31.121", "0.8015", "1.675", "0.0195"),
]
METRIC_KEYS = ("l1", "lpips", "psnr", "ssim", "akd", "aed")


def _metrics_json(path: Path, summary: dict[str, float]) -> Path:
    path.write_text(
        json.dumps(
            {"summary": summary, "per_video": {}, "inputs": {"num_videos": 2, "num_frames": 30}}
        )
    )
    return path


def _row(metrics_json: Path, **extra: object) -> dict[str, object]:
    return {
        "method": "FOMM",
        "metrics_json": str(metrics_json),
        "data": "demo",
        "protocol": "reconstruction",
        "checkpoint": "results/models/fomm_demo/model.ckpt",
        "resolution": 64,
        **extra,
    }


def test_tables_registry_and_packaged_survey_values() -> None:
    assert TABLES.names() == ["table1", "table2", "table3"]
    rows = survey_table("table2_video_driven.csv")
    assert [tuple(r[k] for k in ("method", *METRIC_KEYS)) for r in rows] == SURVEY_TABLE2
    assert len(survey_table("table1_datasets.csv")) == 11
    sadtalker = survey_table("table3_hardware_rating.csv")[-1]
    assert sadtalker["method"] == "SadTalker" and sadtalker["inference_time_s"] == "290"


def test_table2_has_survey_rows_then_ours(tmp_path: Path) -> None:
    summary = {"l1": 0.0612345, "psnr": 21.98765, "ssim": 0.6543219}
    metrics = _metrics_json(tmp_path / "reconstruction.json", summary)
    md_path, csv_path = build_table2([_row(metrics)], tmp_path / "report")
    assert md_path == tmp_path / "report" / "table2.md" and csv_path.name == "table2.csv"

    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == TABLE2_COLUMNS
        rows = list(reader)
    assert len(rows) == 9
    for row, expected in zip(rows[:8], SURVEY_TABLE2, strict=True):
        assert tuple(row[k] for k in ("method", *METRIC_KEYS)) == expected  # exact strings
        assert row["source"] == "survey (paper)"
    ours = rows[-1]
    assert ours["method"] == "FOMM (ours, demo)" and ours["source"] == "ours"
    assert ours["data"] == "demo" and ours["resolution"] == "64"
    assert ours["checkpoint"].endswith("model.ckpt") and ours["protocol"] == "reconstruction"
    for key, value in summary.items():
        assert float(ours[key]) == value
    assert ours["lpips"] == ours["akd"] == ours["aed"] == ""

    markdown = md_path.read_text(encoding="utf-8")
    assert "L1 ↓" in markdown and "PSNR ↑" in markdown and "SSIM ↑" in markdown
    assert "not comparable" in markdown and "reconstruction" in markdown
    assert "same-identity" in markdown and str(metrics) in markdown
    our_line = next(
        line
        for line in markdown.splitlines()
        if "FOMM (ours, demo)" in line and line.startswith("|")
    )
    assert "| 0.0612 | — | 21.988 | 0.6543 | — | — |" in our_line
    assert "| DaGAN++ | survey (paper) |" in markdown and "| 31.121 | 0.8015 |" in markdown


def test_table2_metric_override_and_infinite_psnr(tmp_path: Path) -> None:
    metrics = _metrics_json(
        tmp_path / "m.json", {"psnr": math.inf, "ssim": 0.70, "ssim_skimage_default": 0.80}
    )
    md_path, csv_path = build_table2(
        [_row(metrics, metric_names={"ssim": "ssim_skimage_default"})], tmp_path
    )
    with open(csv_path, newline="", encoding="utf-8") as handle:
        ours = list(csv.DictReader(handle))[-1]
    assert float(ours["ssim"]) == 0.80 and math.isinf(float(ours["psnr"]))
    assert "ssim = `ssim_skimage_default`" in md_path.read_text(encoding="utf-8")
    assert "| ∞ |" in md_path.read_text(encoding="utf-8")


def test_table2_rejects_a_json_without_summary(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="no 'summary'"):
        build_table2([_row(bad)], tmp_path)


def test_tables_1_and_3_show_the_survey_with_an_empty_ours_side(tmp_path: Path) -> None:
    md1, csv1 = build_table1([], tmp_path)
    with open(csv1, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 11 and rows[5]["name"] == "VoxCeleb1" and rows[5]["sentences"] == "153.5K"
    assert "utterance" in rows[5]["note"] and rows[5]["ours_hours"] == ""
    assert rows[5]["ours_status"] == "not in the workflow"
    text = md1.read_text(encoding="utf-8")
    assert "| VoxCeleb1 [3] | 2017 | 352 | 1.2k | 153.5K | Yes | Wild | — | not in" in text
    assert "[3] 153.5K is VoxCeleb1's utterance count" in text
    md3, _ = build_table3([], tmp_path)
    assert (
        "| SadTalker | 2023 | survey (paper) | not stated | not stated | as published | "
        "not stated | 290 | 4.1 | 3.72 | Tesla T4 | — | — | — | — |"
    ) in md3.read_text(encoding="utf-8")


def test_rows_go_to_the_table_their_spec_names(tmp_path: Path) -> None:
    video = _metrics_json(tmp_path / "video.json", {"l1": 0.05, "psnr": 21.0})
    audio = _metrics_json(tmp_path / "audio.json", {"lse_d": 7.5, "lse_c": 6.25, "csim": 0.8})
    built = build_result_tables(
        [_row(video), _row(audio, method="LipGAN", table="table3")], tmp_path
    )
    assert set(built) == {"table2", "table3"}
    with open(built["table3"][1], newline="", encoding="utf-8") as handle:
        table3 = list(csv.DictReader(handle))
    ours3 = [r for r in table3 if r["source"] == "ours"]
    assert [r["method"] for r in ours3] == ["LipGAN (ours, demo)"]
    assert (float(ours3[0]["lse_d"]), float(ours3[0]["lse_c"]), ours3[0]["fid"]) == (7.5, 6.25, "")
    assert ours3[0]["inference_time_s"] == ""  # measured by the bench, not by scoring
    with open(built["table2"][1], newline="", encoding="utf-8") as handle:
        ours2 = [r for r in csv.DictReader(handle) if r["source"] == "ours"]
    assert [r["method"] for r in ours2] == ["FOMM (ours, demo)"] and float(ours2[0]["l1"]) == 0.05
    md3 = built["table3"][0].read_text(encoding="utf-8")
    assert (
        "| LipGAN (ours, demo) |  | ours | demo |" in md3
        and "| 7.500 | 6.250 | — | 0.8000 |" in md3
    )
    with pytest.raises(ValueError, match="names table 'table9'; results tables: table2, table3"):
        build_result_tables([_row(video, table="table9")], tmp_path)


def _gradient_clip(num: int, size: int, shift: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    frames = [
        np.stack(
            [(x * 4 + t * 9 + shift) % 256, (y * 4) % 256, np.full_like(x, (t * 30 + shift) % 256)],
            axis=-1,
        )
        for t in range(num)
    ]
    return np.stack(frames).astype(np.uint8)


def test_frame_indices_are_evenly_spaced() -> None:
    assert frame_indices(21, 5) == [0, 5, 10, 15, 20]
    assert frame_indices(3, 5) == [0, 1, 2]
    assert frame_indices(1, 5) == [0]


def test_comparison_figure(tmp_path: Path) -> None:
    write_image(tmp_path / "source.png", _gradient_clip(1, 64, 0)[0])
    write_video(tmp_path / "driving.mp4", _gradient_clip(12, 64, 50), 25)
    write_video(tmp_path / "fomm.mp4", _gradient_clip(10, 64, 100), 25)
    write_frames_dir(tmp_path / "tpsm", _gradient_clip(11, 32, 150))
    out = comparison_figure(
        tmp_path / "source.png",
        tmp_path / "driving.mp4",
        {"FOMM (fomm_demo)": tmp_path / "fomm.mp4", "TPSM": tmp_path / "tpsm"},
        tmp_path / "figures" / "comparison.png",
        num_frames=4,
        title="Demo",
    )
    assert out == tmp_path / "figures" / "comparison.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        assert image.size == comparison_figure_size(2, 4, title=True)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100
    assert not list(out.parent.glob(".*tmp*"))  # written atomically, no leftovers


def test_metrics_bar_figure(tmp_path: Path) -> None:
    metrics = _metrics_json(tmp_path / "m.json", {"l1": 0.05, "psnr": 22.0, "ssim": 0.7})
    _, csv_path = build_table2([_row(metrics)], tmp_path)
    out = metrics_bar_figure(csv_path, tmp_path / "bars.png")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 500


def test_offline_variants_are_named_in_table2_and_listed_with_reasons(tmp_path: Path) -> None:
    from talking_heads.report.metrics import build_metrics_report

    result = {
        "summary": {"l1": 0.05, "akd_dlib": 2.5, "lse_d": 7.1, "lse_c": 6.2, "av_offset": 1.0},
        "metrics": {
            "l1": {"higher_is_better": False, "skipped_frames": 0},
            "akd_dlib": {"higher_is_better": False, "skipped_frames": 3},
            "lse": {"higher_is_better": False, "skipped_videos": {"lse_d": 0}},
        },
        "inputs": {"num_videos": 2, "num_frames": 40},
        "scoring": {
            "label": "trial scoring",
            "quantities": {
                "l1": {"metric": "l1", "outputs": ["l1"], "passed_over": {}},
                "akd": {
                    "metric": "akd_dlib",
                    "outputs": ["akd_dlib"],
                    "passed_over": {"akd": "MissingWeightsError: 2DFAN4-11f355bf06.pth.tar"},
                },
                "lpips": {
                    "metric": None,
                    "outputs": [],
                    "passed_over": {"lpips": "MissingWeightsError: alexnet-owt-7be5be79.pth"},
                },
                "lse": {"metric": "lse", "outputs": ["lse_d", "lse_c", "av_offset"]},
            },
        },
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(result))
    spec = {"method": "FOMM", "metrics_json": str(path), "data": "demo", "protocol": "recon"}
    md, csv_path = build_table2([spec], tmp_path)
    ours = [r for r in csv.DictReader(csv_path.open()) if r["source"] == "ours"]
    assert float(ours[0]["akd"]) == 2.5 and ours[0]["lpips"] == ""
    assert ours[0]["protocol"] == "recon; scored: trial scoring"
    assert "akd = `akd_dlib`" in md.read_text()
    md, csv_path = build_metrics_report([spec], tmp_path)
    rows = list(csv.DictReader(csv_path.open()))
    by_output = {(r["quantity"], r["output"]): r for r in rows}
    assert by_output[("akd", "akd_dlib")]["kind"] == "offline variant"
    assert by_output[("akd", "akd_dlib")]["skipped"] == "3"
    assert "akd unavailable" in by_output[("akd", "akd_dlib")]["note"]
    assert "demo number" in by_output[("l1", "l1")]["note"]
    assert by_output[("lpips", "")]["kind"] == "not computed"
    assert "alexnet-owt-7be5be79.pth" in by_output[("lpips", "")]["note"]
    assert [by_output[("lse", o)]["value"] for o in ("lse_d", "lse_c", "av_offset")] == [
        "7.1",
        "6.2",
        "1.0",
    ]
    assert "| FOMM | demo | recon | trial scoring | akd | akd_dlib | 2.5000 | ↓ |" in md.read_text()


RULEGRAPH_DOT = """digraph snakemake_dag {
    graph[bgcolor=white, margin=0];
	0[label = "all", color = "0.00 0.6 0.85", style="rounded"];
	1[label = "train", color = "0.33 0.6 0.85", style="rounded"];
	2[label = "preprocess", color = "0.50 0.6 0.85", style="rounded"];
	3[label = "score", color = "0.66 0.6 0.85", style="rounded"];
	2 -> 1
	1 -> 3
	2 -> 0
	3 -> 0
}"""


def test_rulegraph_layers_follow_the_longest_path_and_keep_snakemake_colours(tmp_path: Path):
    from talking_heads.report.rulegraph import draw, layers, parse_rulegraph

    nodes, edges = parse_rulegraph(RULEGRAPH_DOT)
    assert {rule for rule, _ in nodes.values()} == {"all", "train", "preprocess", "score"}
    assert nodes["0"][1] == pytest.approx((0.85, 0.34, 0.34))  # HSV 0.00 0.6 0.85 as RGB
    assert edges == [("2", "1"), ("1", "3"), ("2", "0"), ("3", "0")]
    # all has a direct input from preprocess, but its longest path puts it below score
    assert [[nodes[n][0] for n in row] for row in layers(nodes, edges)] == [
        ["preprocess"],
        ["train"],
        ["score"],
        ["all"],
    ]
    svg = draw(RULEGRAPH_DOT, tmp_path / "graph.svg").read_text()
    assert all(f">{rule}</text>" in svg for rule in ("all", "train", "preprocess", "score"))
    assert draw(RULEGRAPH_DOT, tmp_path / "again.svg").read_text() == svg  # reproducible file
