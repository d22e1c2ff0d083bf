"""The scorer's parts: pairing by stem, NaN-aware aggregation, scoring protocol files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from talking_heads.config import ConfigError
from talking_heads.metrics.aggregate import ScoreTotals
from talking_heads.metrics.base import Metric
from talking_heads.metrics.inputs import MissingInputError, ScoreInputError, pair_videos
from talking_heads.metrics.protocols import load_scoring
from talking_heads.utils.media import write_frames_dir, write_image


def _video(path: Path, value: int) -> Path:
    return write_frames_dir(path, np.full((2, 8, 8, 3), value, np.uint8))


def test_pairs_by_stem_not_by_order(tmp_path: Path) -> None:
    for stem in ("b", "a"):
        _video(tmp_path / "gen" / stem, 1)
    for stem in ("c", "b", "a"):  # an unused reference is fine
        _video(tmp_path / "ref" / stem, 2)
    write_image(tmp_path / "ref" / "still.png", np.zeros((8, 8, 3), np.uint8))  # ignored
    pairs = pair_videos(tmp_path / "gen", tmp_path / "ref")
    assert [(s, g.name, r.name) for s, g, r in pairs] == [("a", "a", "a"), ("b", "b", "b")]
    assert all(r.parent == tmp_path / "ref" for _, _, r in pairs)


def test_unpairable_inputs_are_value_errors_naming_the_side(tmp_path: Path) -> None:
    _video(tmp_path / "gen" / "a", 1)
    with pytest.raises(MissingInputError, match=r"^reference .*nothing: no such file") as caught:
        pair_videos(tmp_path / "gen", tmp_path / "nothing")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, FileNotFoundError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScoreInputError, match="holds no videos"):
        pair_videos(tmp_path / "empty", tmp_path / "gen")


class _Toy(Metric):
    name = "toy"

    def __call__(self, generated: Any, reference: Any, **inputs: Any) -> torch.Tensor:
        raise AssertionError("not called: values are given")


@pytest.mark.parametrize(("aggregation", "expected"), [("frames", 3.0), ("videos", 3.5)])
def test_nan_frames_are_left_out_of_every_mean_and_counted(
    aggregation: str, expected: float
) -> None:
    totals = ScoreTotals({"toy": _Toy()}, aggregation)  # type: ignore[arg-type]
    nan, inf = math.nan, math.inf
    first = totals.add_video("a", 3, {"toy": torch.tensor([1.0, nan, 3.0])}, {})
    totals.add_video("b", 2, {"toy": torch.tensor([nan, 5.0])}, {})
    totals.add_video("c", 1, {"toy": torch.tensor([nan])}, {})
    assert first == {"toy": 2.0, "num_frames": 3}
    assert math.isnan(totals.per_video["c"]["toy"])  # nothing scorable: NaN, not 0
    summary, described = totals.summarise()
    # frames: mean of 1, 3, 5; videos: mean of the video means 2 and 5 (c has none)
    assert summary["toy"] == pytest.approx(expected)
    assert described["toy"]["skipped_frames"] == 3
    assert described["toy"]["nonfinite_frames"] == 0
    assert totals.num_frames == 6
    totals.add_video("d", 1, {"toy": torch.tensor([inf])}, {})
    assert totals.summarise()[1]["toy"]["nonfinite_frames"] == 1


def _scoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    (tmp_path / "configs" / "scoring").mkdir(parents=True)
    (tmp_path / "configs" / "scoring" / "trial.yaml").write_text(body)
    monkeypatch.setenv("TALKING_HEADS_CONFIG_DIR", str(tmp_path / "configs"))


def test_scoring_protocol_metrics_may_be_one_name_or_a_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scoring(tmp_path, monkeypatch, "label: x\ntable: null\nmetrics:\n  l1: l1\n  ssim: [ssim]\n")
    protocol = load_scoring("trial", size=64)
    assert protocol.metrics == {"l1": ["l1"], "ssim": ["ssim"]}
    assert (protocol.name, protocol.size, protocol.aggregation) == ("trial", 64, "frames")
    with pytest.raises(ConfigError, match=r"trial\.yaml: stride: expected an integer"):
        load_scoring("trial", stride="two")
    with pytest.raises(ConfigError, match=r"trial\.yaml: no metrics"):
        load_scoring("trial", metrics={})
