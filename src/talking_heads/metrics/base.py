"""The metric interface and the ``METRICS`` registry.

A metric is a class registered under a unique name. Its class attributes say what it is
(``name``, ``higher_is_better``, ``reference`` naming the exact computation it reproduces,
``inputs`` naming the extra keyword inputs it needs); an instance computes values. Classes,
not instances, are registered so that metrics holding network weights (LPIPS, CSIM, AKD...)
load them only when built with :func:`build_metric`.

Three kinds exist:

- :class:`Metric`: per-frame. ``metric(generated, reference, **inputs)`` takes float tensors
  ``(N, 3, H, W)`` in ``[0, 1]`` on any device and returns one value per frame, ``(N,)``.
  A frame the metric cannot score (no face detected, say) is ``NaN``: the scorer leaves it
  out of the means and counts it (``skipped_frames``).
- :class:`SetMetric`: one value for a whole set of frames (FID, IS): ``reset()``, then
  ``update(generated, reference, **inputs)`` per batch, then ``compute() -> float``.
- :class:`VideoMetric`: values for a whole video (LSE-D/LSE-C, head-motion diversity, Beat
  Align): ``compute_video(generated, reference, **inputs) -> {output: value}`` on all the
  video's frames ``(T, 3, H, W)``.

A metric may produce several values from one computation (SyncNet gives LSE-D, LSE-C and
the AV offset): ``outputs`` names them and they appear under those names in the scores;
by default a metric has one output named like the metric. ``needs_reference = False`` marks
no-reference metrics (CPBD, IS, LSE...), which ignore the reference argument (``None``
when scoring without references).

Extra inputs (``inputs``) are passed by keyword. :func:`talking_heads.metrics.score.score`
provides ``stem``, ``fps``, ``frame_index`` (``(N,)`` long tensor), ``generated_path``,
``reference_path``, and, where given, ``audio_path`` (the video's speech as a file) and
``source`` (the identity/source portrait, float ``(1, 3, H, W)`` in ``[0, 1]``); a metric
declares the names it needs in ``inputs`` and scoring fails early when one is missing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor

from talking_heads.registry import Registry

#: name -> metric class (a :class:`Metric` or :class:`SetMetric` subclass)
METRICS: Registry[type[BaseMetric]] = Registry("metric")


class BaseMetric:
    """What every metric declares; see the module docstring."""

    #: registry name, e.g. ``"psnr"``
    name: ClassVar[str] = ""
    #: whether a larger value is better (drives the table's arrows)
    higher_is_better: ClassVar[bool] = True
    #: the exact computation this metric reproduces (code, function and arguments)
    reference: ClassVar[str] = ""
    #: extra keyword inputs the metric needs besides the two frame batches
    inputs: ClassVar[frozenset[str]] = frozenset()
    #: ``"frame"``, ``"set"`` (one value per frame set) or ``"video"`` (values per video)
    granularity: ClassVar[str] = "frame"
    #: names of the values computed (default: the metric's own name)
    outputs: ClassVar[tuple[str, ...]] = ()
    #: whether the metric compares against reference frames
    needs_reference: ClassVar[bool] = True

    @classmethod
    def output_names(cls) -> tuple[str, ...]:
        """The names the metric's values are stored under."""
        return cls.outputs or (cls.name,)

    def to(self, device: torch.device | str) -> BaseMetric:
        """Move any weights to ``device`` (stateless metrics return themselves)."""
        return self

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The metric's identity as stored in a scores JSON."""
        return {
            "reference": cls.reference,
            "higher_is_better": cls.higher_is_better,
            "granularity": cls.granularity,
            "needs_reference": cls.needs_reference,
            "outputs": list(cls.output_names()),
        }

    @staticmethod
    def check_pair(generated: Tensor, reference: Tensor) -> None:
        """Raise unless both are ``(N, 3, H, W)`` float tensors of the same shape and device."""
        if generated.shape != reference.shape:
            raise ValueError(
                f"generated {tuple(generated.shape)} and reference {tuple(reference.shape)} "
                "differ in shape"
            )
        if generated.ndim != 4 or generated.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) frames, got {tuple(generated.shape)}")
        if not (generated.is_floating_point() and reference.is_floating_point()):
            raise TypeError("frames must be float tensors in [0, 1]")
        if generated.device != reference.device:
            raise ValueError(f"frames on {generated.device} and {reference.device}")


class Metric(BaseMetric, ABC):
    """A per-frame metric: ``__call__`` returns one value per frame pair."""

    granularity: ClassVar[str] = "frame"

    @abstractmethod
    def __call__(self, generated: Tensor, reference: Tensor, **inputs: Any) -> Tensor:
        """Per-frame values ``(N,)`` for float frames ``(N, 3, H, W)`` in ``[0, 1]``."""


class SetMetric(BaseMetric, ABC):
    """A metric with one value for a whole set of frames (e.g. FID)."""

    granularity: ClassVar[str] = "set"

    @abstractmethod
    def reset(self) -> None:
        """Forget all frames seen so far."""

    @abstractmethod
    def update(self, generated: Tensor, reference: Tensor, **inputs: Any) -> None:
        """Accumulate one batch of float frames ``(N, 3, H, W)`` in ``[0, 1]``."""

    @abstractmethod
    def compute(self) -> float | dict[str, float]:
        """The value over every frame passed to :meth:`update` since :meth:`reset`.

        A metric with several ``outputs`` returns ``{output: value}``; further keys (e.g.
        the number of frames used) are stored beside the metric's description.
        """


class VideoMetric(BaseMetric, ABC):
    """A metric computed on a whole video at once (sync, motion statistics)."""

    granularity: ClassVar[str] = "video"

    @abstractmethod
    def compute_video(
        self, generated: Tensor, reference: Tensor | None, **inputs: Any
    ) -> dict[str, float]:
        """Values ``{output: value}`` for one video's float frames ``(T, 3, H, W)`` in [0, 1].

        A video the metric cannot score (too short, no face) gives ``NaN`` values; the
        scorer leaves it out of the means and counts it.
        """


def build_metric(name: str, device: torch.device | str = "cpu") -> BaseMetric:
    """Instantiate the registered metric ``name`` and move it to ``device``."""
    return METRICS.get(name)().to(device)
