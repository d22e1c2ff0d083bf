"""Recipe parameter presets: ``configs/recipe/<name>.yaml``, each a mapping of recipe name to
parameter overrides (``inference``: for animating one's own clips), applied under the
explicit parameters of a run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from talking_heads.config import ConfigError, config_names, find_config_dir, load_named

from .base import RECIPES

log = logging.getLogger(__name__)

PRESET_GROUP = "recipe"


@dataclass
class RecipePreset:
    """One preset file: a description and the parameter overrides of each recipe it covers."""

    name: str
    description: str = ""
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)


def preset_names() -> list[str]:
    """The presets in ``configs/recipe/``."""
    return config_names(PRESET_GROUP)


def load_preset(name: str) -> RecipePreset:
    """``configs/recipe/<name>.yaml``, every recipe and parameter in it checked: an unknown
    preset, recipe or parameter, or a wrong value, is a :class:`ConfigError` naming the file."""
    if name not in preset_names():
        known = ", ".join(preset_names()) or "(none)"
        raise ConfigError(
            f"unknown recipe preset {name!r} (configs/{PRESET_GROUP}/{name}.yaml); known: {known}"
        )
    preset = load_named(PRESET_GROUP, name, RecipePreset, extra_field="recipes")
    path = find_config_dir() / PRESET_GROUP / f"{name}.yaml"
    for recipe, overrides in list(preset.recipes.items()):
        if recipe not in RECIPES:
            known = ", ".join(RECIPES.names())
            raise ConfigError(f"{path}: unknown recipe {recipe!r}; known: {known}")
        if overrides is None:
            overrides = preset.recipes[recipe] = {}
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"{path}: {recipe}: expected a mapping of parameters")
        RECIPES.get(recipe).params_type.from_dict(overrides, source=f"{path}: {recipe}")
    return preset


def resolve_params(
    recipe: str, params: Mapping[str, Any] | None = None, preset: str | None = None
) -> dict[str, Any]:
    """The parameters of a run: ``preset``'s overrides for ``recipe`` (none without a preset),
    with the explicit ``params`` on top."""
    values: dict[str, Any] = {}
    if preset:
        loaded = load_preset(preset)
        if recipe not in loaded.recipes:
            log.warning("preset %s has no parameters for the %s recipe", preset, recipe)
        values.update(loaded.recipes.get(recipe) or {})
    values.update(params or {})
    return values
