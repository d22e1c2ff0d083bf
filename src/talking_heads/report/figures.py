"""Report figures: the methods-by-frames comparison grid and a metrics bar chart.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (Agg), never through pyplot,
so nothing depends on a display or on global backend state, and are written atomically.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talking_heads.utils.atomic import atomic_path
from talking_heads.utils.media import read_frames

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["comparison_figure", "comparison_figure_size", "frame_indices", "metrics_bar_figure"]

DPI = 150
_CELL_PX = 180  # one frame cell
_GAP_PX = 6  # between cells
_LABEL_PX = 210  # row labels on the left
_HEADER_PX = 36  # the strip with frame indices above the driving row
_TITLE_PX = 54
_MARGIN_PX = 12


def frame_indices(num_available: int, num_frames: int) -> list[int]:
    """``num_frames`` evenly spaced indices over ``range(num_available)`` (fewer if short)."""
    if num_available < 1:
        raise ValueError("no frames to choose from")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    picked = np.linspace(0, num_available - 1, num_frames).round().astype(int)
    return sorted(set(picked.tolist()))


def comparison_figure_size(
    num_methods: int, num_columns: int, *, title: bool = False
) -> tuple[int, int]:
    """Pixel size ``(width, height)`` of a comparison figure with these many rows/columns."""
    rows = 2 + num_methods
    width = _LABEL_PX + num_columns * _CELL_PX + (num_columns - 1) * _GAP_PX + _MARGIN_PX
    height = (
        _MARGIN_PX
        + (_TITLE_PX if title else 0)
        + _HEADER_PX
        + rows * _CELL_PX
        + (rows - 1) * _GAP_PX
        + _MARGIN_PX
    )
    return width, height


def _save_png(fig: Figure, out: Path) -> Path:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return out


def comparison_figure(
    source: Path | str,
    driving: Path | str,
    generated: Mapping[str, Path | str],
    out: Path | str,
    *,
    num_frames: int = 5,
    title: str | None = None,
) -> Path:
    """Draw the survey-style comparison grid (its Figures 4-7) as a PNG.

    Rows, top to bottom: the source portrait, the driving frames, then one row per method
    with its generated frames. Columns are ``num_frames`` evenly spaced frame indices over
    the length of the shortest video, the same indices for every row, written above the
    driving row. ``source`` is an image (or a video, whose first frame is used);
    ``driving`` and the ``generated`` values are videos or frame directories.
    """
    from matplotlib.figure import Figure

    if not generated:
        raise ValueError("no generated videos to compare")
    portrait = read_frames(source)[0]
    driving_frames = read_frames(driving)
    methods = {label: read_frames(path) for label, path in generated.items()}
    available = min(len(driving_frames), *(len(v) for v in methods.values()))
    indices = frame_indices(available, num_frames)
    cols = len(indices)
    width, height = comparison_figure_size(len(methods), cols, title=title is not None)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)

    def cell(row: int, col: int) -> Axes:
        top = _MARGIN_PX + (_TITLE_PX if title is not None else 0) + row * (_CELL_PX + _GAP_PX)
        if row >= 1:
            top += _HEADER_PX
        left = _LABEL_PX + col * (_CELL_PX + _GAP_PX)
        ax = fig.add_axes(
            (left / width, 1 - (top + _CELL_PX) / height, _CELL_PX / width, _CELL_PX / height)
        )
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        return ax

    def label(row: int, text: str) -> None:
        top = _MARGIN_PX + (_TITLE_PX if title is not None else 0) + row * (_CELL_PX + _GAP_PX)
        if row >= 1:
            top += _HEADER_PX
        fig.text(
            (_LABEL_PX - 12) / width,
            1 - (top + _CELL_PX / 2) / height,
            text,
            ha="right",
            va="center",
            fontsize=9,
            wrap=True,
        )

    cell(0, 0).imshow(portrait)
    label(0, "source")
    label(1, "driving")
    header_y = (
        1
        - (
            _MARGIN_PX
            + (_TITLE_PX if title is not None else 0)
            + _CELL_PX
            + _GAP_PX
            + _HEADER_PX / 2
        )
        / height
    )
    for col, index in enumerate(indices):
        centre = (_LABEL_PX + col * (_CELL_PX + _GAP_PX) + _CELL_PX / 2) / width
        fig.text(centre, header_y, f"frame {index}", ha="center", va="center", fontsize=8)
        cell(1, col).imshow(driving_frames[index])
    for row, (name, frames) in enumerate(methods.items(), start=2):
        label(row, name)
        for col, index in enumerate(indices):
            cell(row, col).imshow(frames[index])
    if title is not None:
        fig.text(
            0.5,
            1 - (_MARGIN_PX + _TITLE_PX / 2) / height,
            title,
            ha="center",
            va="center",
            fontsize=11,
        )
    return _save_png(fig, Path(out))


def metrics_bar_figure(table2_csv: Path | str, out: Path | str) -> Path:
    """Small multiples of Table 2: one panel per metric, survey rows grey, ours coloured.

    Rows without a value for a metric are left out of that panel; infinite values are
    skipped too (a bar cannot show them).
    """
    from matplotlib.figure import Figure

    from talking_heads.report.tables import OURS_SOURCE, TABLE2_METRICS

    with open(table2_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{table2_csv}: no rows")
    ncols = 3
    nrows = math.ceil(len(TABLE2_METRICS) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.4 * nrows), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, metric in zip(axes, TABLE2_METRICS, strict=False):
        names, values, colours = [], [], []
        for row in rows:
            text = (row.get(metric.key) or "").strip()
            if not text:
                continue
            value = float(text)
            if not math.isfinite(value):
                continue
            names.append(row["method"])
            values.append(value)
            colours.append("tab:orange" if row.get("source") == OURS_SOURCE else "0.6")
        ax.set_title(metric.header, fontsize=10)
        if not values:
            ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        positions = np.arange(len(values))
        ax.bar(positions, values, color=colours)
        ax.set_xticks(positions, names, rotation=60, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(TABLE2_METRICS) :]:
        ax.set_visible(False)
    fig.suptitle("Table 2: survey (grey) and ours (orange)", fontsize=11)
    return _save_png(fig, Path(out))
