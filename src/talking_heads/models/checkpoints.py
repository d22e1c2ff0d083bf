"""Import of the authors' released checkpoints into our checkpoint format.

An official file is read with ``torch.load(weights_only=True)``; each of its networks is
matched key by key against ours (:func:`strict_state`: no missing key, no unexpected key,
equal shapes, else :class:`CheckpointLayoutError` listing what differs) and the result is
written as a Lightning checkpoint (``state_dict`` with one prefix per network,
``hyper_parameters`` of the method's LightningModule, ``imported_from`` naming the file and its
sha256) that ``talking-heads animate`` and fine-tuning load like one of our own runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from talking_heads.errors import UserError
from talking_heads.manifest import sha256_file
from talking_heads.utils.atomic import atomic_path

#: differences listed per kind in an error message
LISTED = 8


class CheckpointLayoutError(UserError):
    """An official checkpoint does not match the layout of our network."""


def load_failure(error: BaseException) -> str:
    """The first sentence of a ``torch.load`` failure (torch appends a paragraph of advice)."""
    text = " ".join(str(error).split())
    return text.split(". ", 1)[0].rstrip(".") or type(error).__name__


def read_official(path: Path | str) -> dict[str, Any]:
    """The official file as a dict (tensors, optimiser states, numbers; no code is run)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointLayoutError(
            f"{path}: not a readable checkpoint (truncated or another format: "
            f"{load_failure(error)})"
        ) from error
    if not isinstance(checkpoint, dict):
        raise CheckpointLayoutError(f"{path.name}: holds a {type(checkpoint).__name__}, not a dict")
    return checkpoint


def network_state(checkpoint: Mapping[str, Any], network: str, source: str) -> dict[str, Any]:
    """``checkpoint[network]``, or an error naming the networks the file does hold."""
    state = checkpoint.get(network)
    if not isinstance(state, Mapping):
        held = sorted(k for k, v in checkpoint.items() if isinstance(v, Mapping))
        raise CheckpointLayoutError(f"{source}: no {network!r} state dict (it holds {held})")
    return dict(state)


def strict_state(
    module: torch.nn.Module,
    official: Mapping[str, torch.Tensor],
    *,
    network: str,
    source: str,
    rename: Callable[[str], str] | None = None,
) -> dict[str, torch.Tensor]:
    """``official`` (keys passed through ``rename``) checked against ``module``'s layout.

    Returns the renamed state dict, which then loads into ``module`` with ``strict=True``.
    Raises :class:`CheckpointLayoutError` listing missing keys, unexpected keys and shape
    mismatches.
    """
    renamed = {(rename(k) if rename else k): v for k, v in official.items()}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    shapes = sorted(
        f"{k} {tuple(renamed[k].shape)} != ours {tuple(expected[k].shape)}"
        for k in set(expected) & set(renamed)
        if tuple(renamed[k].shape) != tuple(expected[k].shape)
    )
    problems = [
        f"{len(items)} {kind}: {', '.join(items[:LISTED])}{' ...' if len(items) > LISTED else ''}"
        for kind, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
        if items
    ]
    if problems:
        raise CheckpointLayoutError(
            f"{source}: {network} does not match our {type(module).__name__}: "
            + "; ".join(problems)
        )
    return {k: renamed[k].detach().clone() for k in expected}


def write_lightning_checkpoint(
    path: Path | str,
    networks: Mapping[str, Mapping[str, torch.Tensor]],
    hyper_parameters: Mapping[str, Any],
    *,
    official: Path,
    method: str,
    epoch: int | None,
) -> Path:
    """Write ``networks`` (prefix → state dict) as a Lightning checkpoint, atomically."""
    import pytorch_lightning as pl

    state_dict = {
        f"{prefix}.{k}": v for prefix, state in networks.items() for k, v in state.items()
    }
    checkpoint = {
        "state_dict": state_dict,
        "hyper_parameters": dict(hyper_parameters),
        "pytorch-lightning_version": pl.__version__,
        "epoch": int(epoch) if epoch is not None else 0,
        "global_step": 0,
        "imported_from": {
            "method": method,
            "file": official.name,
            "sha256": sha256_file(official),
            "epoch": int(epoch) if epoch is not None else None,
        },
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return Path(path)


def official_states(
    checkpoint: Mapping[str, Any],
    built: Mapping[str, torch.nn.Module],
    *,
    source: str,
    optional: Sequence[str] = (),
    check: Callable[[str, Mapping[str, Any]], None] | None = None,
    stacklevel: int = 2,
) -> dict[str, dict[str, torch.Tensor]]:
    """Each of ``built``'s networks' state from ``checkpoint``, checked by :func:`strict_state`.

    A network named in ``optional`` that the file lacks keeps its fresh initialisation (with a
    :class:`RuntimeWarning`, ``stacklevel`` as :func:`warnings.warn`'s, counted from the caller);
    any other missing one is a :class:`CheckpointLayoutError`. ``check(name, official)`` runs on
    each official state dict before the layout check (to raise a clearer error).
    """
    states: dict[str, dict[str, torch.Tensor]] = {}
    for name, module in built.items():
        if name in optional and name not in checkpoint:
            warnings.warn(
                f"{source} holds no {name!r}: a freshly initialised one is written",
                RuntimeWarning,
                stacklevel=stacklevel + 1,
            )
            states[name] = module.state_dict()
            continue
        official = network_state(checkpoint, name, source)
        if check is not None:
            check(name, official)
        states[name] = strict_state(module, official, network=name, source=source)
    return states


def import_networks(
    path: Path,
    out: Path | str,
    checkpoint: Mapping[str, Any],
    built: Mapping[str, torch.nn.Module],
    hyper_parameters: Mapping[str, Any],
    *,
    method: str,
    epoch: Any = None,
    optional: Sequence[str] = (),
    check: Callable[[str, Mapping[str, Any]], None] | None = None,
) -> Path:
    """The official file ``path`` (read as ``checkpoint``) imported into networks ``built``
    (:func:`official_states`) and written to ``out`` (:func:`write_lightning_checkpoint`);
    ``epoch`` is recorded when it is an int. The warnings point at the caller's caller (the
    method's ``import_official`` caller)."""
    states = official_states(
        checkpoint, built, source=path.name, optional=optional, check=check, stacklevel=3
    )
    return write_lightning_checkpoint(
        out,
        states,
        hyper_parameters,
        official=path,
        method=method,
        epoch=epoch if isinstance(epoch, int) else None,
    )


class CheckpointError(UserError):
    """A checkpoint given to a method cannot be used with it (unreadable, or another method's)."""


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """One of our checkpoints, read with ``weights_only=True``; a missing, truncated or
    foreign file is a :class:`CheckpointError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or another format: "
            f"{load_failure(error)})"
        ) from error
    if isinstance(checkpoint, dict) and not is_ours(checkpoint):
        found = official_method(checkpoint)
        if found is not None:
            raise CheckpointError(
                f"{path} is an official {found} file: convert it first with "
                f"`talking-heads import-checkpoint --method {found} --official {path}`"
            )
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise CheckpointError(
            f"{path}: not one of our checkpoints (no state_dict); an official file is "
            "converted first with `talking-heads import-checkpoint`"
        )
    return checkpoint


def _article(word: str) -> str:
    return "an" if word[:1] in set("aeiou") else "a"


def is_ours(checkpoint: Mapping[str, Any]) -> bool:
    """Whether a file is one of our (Lightning) checkpoints: a ``state_dict`` and Lightning's
    version or our method record (upstream Wav2Lip files hold a ``state_dict`` too)."""
    return isinstance(checkpoint.get("state_dict"), Mapping) and any(
        key in checkpoint for key in ("pytorch-lightning_version", "method", "imported_from")
    )


def networks_of(checkpoint: Mapping[str, Any]) -> set[str]:
    """The network prefixes of a checkpoint's ``state_dict`` (``generator``, ``kp_detector``)."""
    return {key.split(".", 1)[0] for key in checkpoint["state_dict"]}


def checkpoint_method(checkpoint: Mapping[str, Any]) -> str | None:
    """The method a checkpoint belongs to: as recorded (``method``, ``imported_from``), else
    the registered method whose inference networks it holds, preferring the one that needs
    the most of them (DaGAN's networks include FOMM's); ``None`` when none fits."""
    from talking_heads.models import METHODS

    recorded = checkpoint.get("method") or (checkpoint.get("imported_from") or {}).get("method")
    if recorded:
        return str(recorded)
    held = networks_of(checkpoint)
    fits = []
    for name in METHODS.names():
        needed = set(getattr(METHODS.get(name).generator_class(), "NETWORKS", ()))
        if needed and needed <= held:
            fits.append((len(needed), name))
    return max(fits)[1] if fits else None


def check_checkpoint(path: Path | str, method: str) -> dict[str, Any]:
    """Read ``path`` (:func:`read_checkpoint`) and check that it is a ``method`` checkpoint."""
    checkpoint = read_checkpoint(path)
    found = checkpoint_method(checkpoint)
    if found is None:
        held = ", ".join(sorted(networks_of(checkpoint))) or "no networks"
        raise CheckpointError(f"{path}: not a checkpoint of any registered method (holds {held})")
    if found != method:
        raise CheckpointError(f"{path} is {_article(found)} {found} checkpoint, not {method}")
    return checkpoint


def required_official_networks(method: str) -> set[str]:
    """The networks an official file of ``method`` must hold (its importer's ``REQUIRED``, else
    its ``NETWORKS``); empty for a method without an importer."""
    import importlib

    from talking_heads.models import METHODS

    importer = METHODS.get(method).importer
    if not importer:
        return set()
    module = importlib.import_module(importer.rpartition(".")[0])
    return set(getattr(module, "REQUIRED", getattr(module, "NETWORKS", ())))


def official_method(checkpoint: Mapping[str, Any]) -> str | None:
    """The method a checkpoint file belongs to: for one of ours, :func:`checkpoint_method`;
    for an official file, the registered method whose required networks it holds, preferring
    the one that needs the most of them; ``None`` when none fits."""
    from talking_heads.models import METHODS

    if is_ours(checkpoint):
        return checkpoint_method(checkpoint)
    held = {k for k, v in checkpoint.items() if isinstance(v, Mapping)}
    fits = []
    for name in METHODS.names():
        claims = _importer_attribute(name, "claims")
        if claims is not None and claims(checkpoint):
            return name
        needed = required_official_networks(name)
        if needed and needed <= held and "state_dict" not in held:
            fits.append((len(needed), name))
    return max(fits)[1] if fits else None


def _importer_attribute(method: str, attribute: str) -> Any:
    """An attribute of ``method``'s importer module (``claims``: whether a file is its)."""
    import importlib

    from talking_heads.models import METHODS

    importer = METHODS.get(method).importer
    if not importer:
        return None
    return getattr(importlib.import_module(importer.rpartition(".")[0]), attribute, None)


def explain_foreign_official(path: Path | str, method: str) -> CheckpointLayoutError | None:
    """Why ``path`` cannot be imported as ``method`` when it is another method's file (or one
    of our checkpoints): an error saying so, else ``None`` (the layout error stands)."""
    try:
        checkpoint = read_official(path)
    except CheckpointLayoutError:  # not a torch file (e.g. Keras HDF5): the layout error stands
        return None
    ours = is_ours(checkpoint)
    found = official_method(checkpoint)
    if not ours:
        if found is None or found == method:
            return None
        own = required_official_networks(method)
        if _importer_attribute(method, "claims") is None and own <= set(checkpoint):
            return None
    if found == method:
        return CheckpointLayoutError(
            f"{path} is already one of our {method} checkpoints: give it to "
            "`talking-heads animate --checkpoint` directly"
        )
    kind = found or "foreign"
    return CheckpointLayoutError(f"{path} is {_article(kind)} {kind} checkpoint, not {method}")
