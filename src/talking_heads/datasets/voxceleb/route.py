"""The interface of a VoxCeleb acquisition route, which a dataset picks by its ``source``.

A route lists the units to download for the chosen subsets, fetches and post-processes one
unit, assembles what needs every shard, and turns this shard's units into clip rows. The
metadata units (``meta`` subset) and the per-speaker columns are the dataset's own, shared
by every route.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from talking_heads.datasets.base import AcquireContext, http_fetch

if TYPE_CHECKING:
    from talking_heads.datasets.voxceleb import VoxCelebBase

__all__ = ["SPEAKER", "Route"]

#: a VoxCeleb identity, the folder name of a speaker
SPEAKER = re.compile(r"id\d{5}")


class Route:
    """One way of acquiring a VoxCeleb dataset from ``source``; subclasses fill the hooks."""

    def __init__(self, dataset: VoxCelebBase, source: str) -> None:
        self.dataset = dataset
        self.source = source

    def default_subsets(self) -> tuple[str, ...]:
        """Subsets taken when none are named (empty: the dataset's defaults)."""
        return ()

    def check_subsets(self, subsets: tuple[str, ...]) -> None:
        """Raise a :class:`ValueError` for subsets this route cannot acquire."""

    def units(self, ctx: AcquireContext, subsets: tuple[str, ...]) -> list[dict[str, Any]]:
        """The media units of ``subsets`` (the dataset adds the metadata units)."""
        raise NotImplementedError

    def fetch(self, ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
        """Download one unit; default: a resumable, verified HTTP download."""
        return http_fetch(ctx, unit, session)

    def after_fetch(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        """Post-process a downloaded unit."""

    def assemble(self, ctx: AcquireContext, downloads: pd.DataFrame) -> dict:
        """What needs every download shard; the ``assembled.json`` summary."""
        return {"archives": {}}

    def scan(
        self,
        ctx: AcquireContext,
        shard: int,
        records: list[dict[str, Any]],
        iden: Mapping[str, str],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """This shard's clip rows to describe, and its failed rows."""
        raise NotImplementedError
