"""Scoring protocols as named configs (``configs/scoring/<name>.yaml``).

A scoring protocol fixes everything that changes a metric's number besides the metric
itself: the frame size the metrics see, frame selection, the aggregation, and which metric
computes each reported quantity. It names the table it serves; the report prints the
protocol's label beside every number.

``metrics`` maps each reported quantity to candidate metrics in order of preference, e.g.
``akd: [akd, akd_dlib]``: the survey's metric first, then an offline variant computed
without downloaded weights. :func:`choose_metrics` builds the first candidate whose weights
are present and records why the others were passed over, so a demo run reports real
numbers under their own names instead of failing, and never silently swaps a survey metric
for another computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from talking_heads.errors import UserError
from talking_heads.metrics.base import METRICS, BaseMetric
from talking_heads.weights import ChecksumMismatchError, MissingWeightsError

__all__ = [
    "MetricChoice",
    "ScoringProtocol",
    "choose_metrics",
    "load_scoring",
    "scoring_dir",
    "scoring_names",
]


@dataclass(frozen=True)
class ScoringProtocol:
    """A named scoring protocol (the fields of its YAML file).

    ``metrics`` maps each quantity to its candidate metrics; one metric may be given as a
    plain name and is kept as a one-item list.
    """

    name: str
    label: str
    table: str | None
    metrics: dict[str, list[str] | str]
    size: int | None = None
    stride: int = 1
    max_frames: int | None = None
    aggregation: Literal["frames", "videos"] = "frames"
    notes: str = ""

    def __post_init__(self) -> None:
        listed = {q: [c] if isinstance(c, str) else list(c) for q, c in self.metrics.items()}
        object.__setattr__(self, "metrics", listed)


@dataclass
class MetricChoice:
    """Which metric computes a reported quantity, and why earlier candidates were not used."""

    quantity: str
    metric: str | None
    instance: BaseMetric | None = None
    passed_over: dict[str, str] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """JSON-ready: the chosen metric, its outputs, and the reasons for the others."""
        outputs = [] if self.instance is None else list(type(self.instance).output_names())
        return {"metric": self.metric, "outputs": outputs, "passed_over": self.passed_over}


def scoring_dir() -> Path:
    """``configs/scoring`` beside the training configs."""
    from talking_heads.config import find_config_dir

    return find_config_dir() / "scoring"


def scoring_names() -> list[str]:
    """The scoring protocols defined in ``configs/scoring``."""
    return sorted(p.stem for p in scoring_dir().glob("*.yaml"))


def load_scoring(name: str, **overrides: Any) -> ScoringProtocol:
    """The scoring protocol ``name`` with ``overrides`` (``None`` values ignored).

    A wrong key or value is a :class:`~talking_heads.config.ConfigError` naming the file; so
    is a protocol without metrics or naming a metric that is not registered.
    """
    from talking_heads.config import ConfigError, load_named

    protocol = load_named("scoring", name, ScoringProtocol, overrides)
    path = scoring_dir() / f"{name}.yaml"
    if not protocol.metrics:
        raise ConfigError(f"{path}: no metrics")
    for quantity, candidates in protocol.metrics.items():
        if not candidates:
            raise ConfigError(f"{path}: {quantity}: no candidate metrics")
        for candidate in candidates:
            if candidate not in METRICS:
                raise ConfigError(
                    f"{path}: {quantity}: unknown metric {candidate!r}; "
                    f"known: {', '.join(METRICS.names())}"
                )
    return protocol


def choose_metrics(
    protocol: ScoringProtocol,
    device: torch.device | str = "cpu",
    *,
    only: list[str] | None = None,
) -> list[MetricChoice]:
    """Build, for every quantity (or those in ``only``), the first candidate that loads.

    A candidate is passed over when its pretrained weights are missing or fail their
    checksum; the reason is kept. A quantity none of whose candidates loads keeps
    ``metric=None``. Any other error is raised.
    """
    choices = []
    for quantity, candidates in protocol.metrics.items():
        if only is not None and quantity not in only:
            continue
        choice = MetricChoice(quantity, None)
        for candidate in candidates:
            try:
                choice.instance = METRICS.get(candidate)().to(device)
            except (MissingWeightsError, ChecksumMismatchError) as error:
                choice.passed_over[candidate] = f"{type(error).__name__}: {error}"
                continue
            choice.metric = candidate
            break
        choices.append(choice)
    if only is not None:
        unknown = sorted(set(only) - {c.quantity for c in choices})
        if unknown:
            raise KeyError(f"scoring protocol {protocol.name!r} has no quantity {unknown}")
    return choices


def score_protocol(
    protocol: ScoringProtocol,
    generated: Path | str,
    reference: Any = None,
    *,
    audio: Any = None,
    source: Any = None,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    only: list[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score with the metrics :func:`choose_metrics` picks, under the protocol's settings.

    Metrics needing what was not given (a reference, audio) are recorded as not computed
    with that reason rather than failing the whole scoring. The result is
    :func:`~talking_heads.metrics.score.score`'s, plus ``scoring``: the protocol's settings
    and, per quantity, the metric used and the reasons any other candidate was passed over.
    """
    from talking_heads.metrics.score import score

    choices = choose_metrics(protocol, device, only=only)
    usable = []
    for choice in choices:
        metric = choice.instance
        if metric is None:
            continue
        missing = []
        if metric.needs_reference and reference is None:
            missing.append("reference frames")
        if "audio_path" in metric.inputs and audio is None:
            missing.append("audio")
        if missing:
            choice.passed_over[choice.metric] = f"not computed: needs {' and '.join(missing)}"  # type: ignore[index]
            choice.metric, choice.instance = None, None
            continue
        usable.append(metric)
    if not usable:
        reasons = {c.quantity: c.passed_over for c in choices}
        raise UserError(f"no metric of {protocol.name!r} can be computed here: {reasons}")
    result = score(
        usable,
        generated,
        reference,
        audio=audio,
        source=source,
        device=device,
        batch_size=batch_size,
        size=protocol.size,
        stride=protocol.stride,
        max_frames=protocol.max_frames,
        aggregation=protocol.aggregation,
        progress=progress,
    )
    result["scoring"] = {
        "name": protocol.name,
        "label": protocol.label,
        "table": protocol.table,
        "size": protocol.size,
        "stride": protocol.stride,
        "max_frames": protocol.max_frames,
        "aggregation": protocol.aggregation,
        "notes": protocol.notes,
        "quantities": {c.quantity: c.as_record() for c in choices},
    }
    return result
