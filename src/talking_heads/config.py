"""Finding, composing and typing configs: the one module training, inference, scoring,
preprocessing and the Snakefile use to read ``configs/``.

- :func:`find_config_dir`: where ``configs/`` is (``$TALKING_HEADS_CONFIG_DIR``, the working
  directory or a parent of it, else the source checkout).
- :func:`compose_experiment` / :func:`experiment_model_config`: a Hydra experiment composed
  from ``configs/train.yaml`` without running it.
- :func:`load_named`: a named YAML file of a group (``configs/protocol/<name>.yaml``,
  ``configs/scoring/<name>.yaml``, ``configs/recipe/<name>.yaml``) read into its dataclass
  through :func:`typed`, the one typed loader: unknown keys, missing keys, values of the wrong
  type and values outside a ``Literal`` are a :class:`ConfigError` naming the file and key.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "compose_experiment",
    "config_names",
    "experiment_model_config",
    "find_config_dir",
    "load_named",
    "plain",
    "typed",
]


class ConfigError(ValueError):
    """A config file or override does not match its schema (the message names key and file)."""


def find_config_dir() -> Path:
    """``$TALKING_HEADS_CONFIG_DIR``, else ``configs/`` in the working directory or above it,
    else the source checkout's ``configs/`` (editable installs)."""
    if env := os.environ.get("TALKING_HEADS_CONFIG_DIR"):
        return Path(env).resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "configs" / "train.yaml").is_file():
            return folder / "configs"
    return Path(__file__).resolve().parents[2] / "configs"


def config_names(group: str) -> list[str]:
    """The names of the YAML files of ``configs/<group>/``."""
    return sorted(p.stem for p in (find_config_dir() / group).glob("*.yaml"))


def compose_experiment(experiment: str, overrides: Sequence[str] = ()) -> Any:
    """``configs/train.yaml`` composed with ``experiment=<experiment>`` (an OmegaConf config).

    An unknown experiment is a :class:`ConfigError` listing the known ones.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import MissingConfigException

    known = config_names("experiment")
    if experiment not in known:
        raise ConfigError(f"unknown experiment {experiment!r}; known: {', '.join(known)}")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(find_config_dir()), version_base="1.3"):
            return compose("train.yaml", overrides=[f"experiment={experiment}", *overrides])
    except MissingConfigException as error:
        raise ConfigError(f"experiment {experiment!r}: {error}") from error
    finally:
        GlobalHydra.instance().clear()


def experiment_model_config(experiment: str) -> dict[str, Any]:
    """The resolved ``model`` config of Hydra experiment ``experiment`` (as a plain dict)."""
    from omegaconf import OmegaConf

    model = OmegaConf.to_container(compose_experiment(experiment).model, resolve=True)
    if not isinstance(model, dict):
        raise ConfigError(f"experiment {experiment!r} has no model config")
    return {str(k): v for k, v in model.items()}


def load_named(
    group: str,
    name: str,
    schema: type[T],
    overrides: Mapping[str, Any] | None = None,
    *,
    extra_field: str | None = None,
) -> T:
    """``configs/<group>/<name>.yaml`` with ``overrides`` (``None`` values ignored), typed as
    ``schema`` (:func:`typed`). The file's ``name`` key, when present, must equal ``name``."""
    import yaml

    path = find_config_dir() / group / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(config_names(group)) or "(none)"
        raise ConfigError(f"unknown {group} {name!r}; known: {known}")
    try:
        values = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if values.get("name", name) != name:
        raise ConfigError(f"{path}: name {values['name']!r} differs from the file name")
    values["name"] = name
    return typed(schema, values, source=str(path), extra_field=extra_field)


def typed(
    schema: type[T],
    values: Mapping[str, Any],
    *,
    source: str,
    extra_field: str | None = None,
) -> T:
    """``schema(**values)`` with every value checked and coerced to its field's annotation.

    Supports ``Any``, ``str``, ``int``, ``float``, ``bool``, ``Path``, ``None`` unions,
    ``Literal``, ``list``/``tuple``/``dict`` of those, and nested dataclasses. Keys the schema
    lacks go into ``extra_field`` when given, else they are an error.
    """
    if not is_dataclass(schema):
        raise TypeError(f"{schema!r} is not a dataclass")
    hints = typing.get_type_hints(schema)
    known = {f.name: f for f in fields(schema) if f.init}
    unknown = sorted(set(values) - set(known))
    kwargs: dict[str, Any] = {}
    if unknown:
        if extra_field is None:
            raise ConfigError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        kwargs[extra_field] = {k: values[k] for k in unknown}
    for key, spec in known.items():
        if key == extra_field and extra_field in kwargs:
            continue
        if key in values:
            kwargs[key] = _coerce(values[key], hints[key], f"{source}: {key}")
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise ConfigError(f"{source}: missing required setting {key!r}")
    return schema(**kwargs)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """``value`` checked against ``annotation`` (see :func:`typed`)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits no type")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or annotation is tuple else items
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = args if args else (Any, Any)
        return {
            _coerce(k, key_type, where): _coerce(v, value_type, f"{where}.{k}")
            for k, v in value.items()
        }
    if is_dataclass(annotation) and isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return typed(annotation, value, source=where)
    return _scalar(value, annotation, where)


def _scalar(value: Any, annotation: Any, where: str) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if annotation is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise ConfigError(f"{where}: expected a path, got {value!r}")
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise ConfigError(f"{where}: unsupported value {value!r} for {annotation!r}")


def plain(value: Any) -> Any:
    """Config values as plain Python (dicts, lists, scalars, strings).

    Lightning checkpoints then hold only types that ``torch.load(weights_only=True)`` accepts
    (an OmegaConf ``DictConfig`` or a ``Path`` would not load).
    """
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
