"""The lip-sync comparison figure: methods × frames of one clip, the speech under them.

Rows: the real face frames, then each method's re-synchronised frames, the same frame
indices for every row; the bottom panel is the driving speech's waveform over the clip's
time span with a marker at each shown frame, so that mouth shapes can be read against the
sound that drove them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from talking_heads.report.figures import DPI, _save_png, frame_indices
from talking_heads.utils.media import read_frames

__all__ = ["lipsync_figure"]


def lipsync_figure(
    reference: Path | str,
    audio: Path | str,
    generated: Mapping[str, Path | str],
    out: Path | str,
    *,
    fps: float = 25.0,
    num_frames: int = 5,
    title: str | None = None,
) -> Path:
    """Draw the figure (see the module docstring) as a PNG at ``out``."""
    import soundfile
    from matplotlib.figure import Figure

    if not generated:
        raise ValueError("no generated videos to compare")
    rows = {"real frames": read_frames(reference)}
    rows.update({label: read_frames(path) for label, path in generated.items()})
    available = min(len(frames) for frames in rows.values())
    indices = frame_indices(available, num_frames)
    samples, rate = soundfile.read(str(audio), dtype="float32", always_2d=True)
    samples = samples.mean(axis=1)[: round(available / fps * rate)]
    cols = len(indices)
    fig = Figure(figsize=(1.6 + 1.5 * cols, 1.5 * len(rows) + 1.6), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(len(rows) + 1, cols, height_ratios=[1.0] * len(rows) + [0.9])
    for row, (label, frames) in enumerate(rows.items()):
        for col, index in enumerate(indices):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(frames[index])
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
            if row == 0:
                ax.set_title(f"frame {index}", fontsize=8)
    wave = fig.add_subplot(grid[len(rows), :])
    times = np.arange(len(samples)) / rate
    wave.plot(times, samples, linewidth=0.4, color="0.25")
    for index in indices:
        wave.axvline(index / fps, color="tab:orange", linewidth=1.0)
    wave.set_xlim(0, available / fps)
    wave.set_xlabel("time (s): driving speech, orange lines at the frames shown", fontsize=8)
    wave.set_yticks([])
    wave.tick_params(axis="x", labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save_png(fig, Path(out))
