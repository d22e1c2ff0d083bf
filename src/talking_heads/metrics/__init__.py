"""Evaluation metrics: a registry of per-frame and per-set metrics, and the scorer.

Importing the package registers the built-in metrics (``l1``, ``psnr``, ``ssim``,
``ssim_skimage_default``). ``talking_heads.metrics.score.score`` runs them over videos.
"""

from talking_heads.metrics import pixel as _pixel  # noqa: F401 - registers the pixel metrics
from talking_heads.metrics.base import METRICS, BaseMetric, Metric, SetMetric, build_metric

__all__ = ["METRICS", "BaseMetric", "Metric", "SetMetric", "build_metric"]
