"""Evaluation metrics: a registry of per-frame and per-set metrics, and the scorer.

Importing the package registers the built-in metrics, one module per family (``pixel``,
``perceptual``, ``sharpness``, ``identity``, ``landmarks``, ``motion``, ``sync``);
``talking_heads.metrics.score.score`` runs them over videos and
``talking_heads.metrics.protocols`` picks them by scoring protocol.
"""

from talking_heads.metrics import identity as _identity  # noqa: F401
from talking_heads.metrics import landmarks as _landmarks  # noqa: F401
from talking_heads.metrics import motion as _motion  # noqa: F401
from talking_heads.metrics import perceptual as _perceptual  # noqa: F401
from talking_heads.metrics import pixel as _pixel  # noqa: F401 - registers the pixel metrics
from talking_heads.metrics import sharpness as _sharpness  # noqa: F401
from talking_heads.metrics import sync as _sync  # noqa: F401
from talking_heads.metrics.base import (
    METRICS,
    BaseMetric,
    Metric,
    SetMetric,
    VideoMetric,
    build_metric,
)

__all__ = ["METRICS", "BaseMetric", "Metric", "SetMetric", "VideoMetric", "build_metric"]
