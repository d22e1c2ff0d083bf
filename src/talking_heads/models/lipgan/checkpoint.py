"""Upstream LipGAN files: Keras 2.2.4 HDF5 (``gen.h5``/``disc.h5`` as ``train.py`` writes them
with ``model.save``, the released ``lipgan_residual_mfcc.h5``, a ``save_weights`` file, or the
combined ``comb.h5``), read with h5py (no Keras/TensorFlow needed).

Layout: a ``model.save`` file keeps the weights under ``model_weights/``, a ``save_weights``
file at its root; there, the ``layer_names`` attribute lists the model's layers and each layer
group's ``weight_names`` attribute its variables (``conv2d_1/kernel:0``), each a dataset at
that path inside the group. A nested model (``comb.h5``'s generator and discriminator) is one
group whose weight names carry the inner layers' names.

Mapping: Conv2D ``kernel`` ``(h, w, in, out)`` → ``weight`` ``(out, in, h, w)``;
Conv2DTranspose ``kernel`` ``(h, w, out, in)`` → ``weight`` ``(in, out, h, w)``; ``bias`` as is;
BatchNormalization ``gamma/beta/moving_mean/moving_variance`` → ``weight/bias/running_mean/
running_var``; InstanceNormalization ``gamma/beta`` (shape ``(1,)``) → ``weight/bias``.
Keras numbers layer names per session, so a ``disc.h5`` written after the generator was built
starts at ``conv2d_68``: each prefix's numbers are shifted so that its first layer is ``_1``
(Keras's own ``load_weights`` goes by order, not by name) and then matched key by key.
Anything missing, unexpected or of another shape is a :class:`CheckpointLayoutError`.

Which audio input (``mfcc12x35``/``mel80x27``) and generator (``residual``/``basic``) a file
holds is found from its layers, the experiment's choice tried first.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talking_heads.models.checkpoints import (
    LISTED,
    CheckpointLayoutError,
    write_lightning_checkpoint,
)
from talking_heads.models.lipgan.networks import (
    AUDIO_SHAPES,
    VARIANTS,
    LipGANDiscriminator,
    LipGANGeneratorNet,
)

NETWORKS = ("generator",)
#: an official file is HDF5, recognised by its signature, not by network names
REQUIRED: tuple[str, ...] = ()
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: upstream's discriminator file, imported too when it lies beside a generator file
DISC_FILE = "disc.h5"
#: Keras weight name → ours, per layer kind
KERAS_WEIGHTS = {
    "conv2d": {"kernel": "weight", "bias": "bias"},
    "conv2d_transpose": {"kernel": "weight", "bias": "bias"},
    "batch_normalization": {
        "gamma": "weight",
        "beta": "bias",
        "moving_mean": "running_mean",
        "moving_variance": "running_var",
    },
    "instance_normalization": {"gamma": "weight", "beta": "bias"},
}
_NAME = re.compile(r"^(?P<prefix>[a-z0-9_]+?)_(?P<uid>\d+)$")


def is_hdf5(path: Path | str) -> bool:
    """Whether ``path`` starts with the HDF5 signature (at 0 or a power-of-two user block)."""
    try:
        with open(path, "rb") as handle:
            for offset in (0, 512, 1024, 2048, 4096):
                handle.seek(offset)
                if handle.read(8) == HDF5_SIGNATURE:
                    return True
    except OSError:
        return False
    return False


def claims(checkpoint: Mapping[str, Any]) -> bool:
    """A torch dict is never a LipGAN file (upstream's are Keras HDF5)."""
    return False


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_keras_h5(path: Path | str) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The Keras weights of ``path``: ``{model: {layer: {weight: array}}}``, where ``model``
    is ``""`` for the file's own layers and the group name of each nested model."""
    try:
        import h5py
    except ImportError as error:  # pragma: no cover - h5py is a dependency
        raise CheckpointLayoutError(
            "reading Keras .h5 files needs h5py (pip install h5py)"
        ) from error
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official checkpoint not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise CheckpointLayoutError(f"{path}: not a readable HDF5 file ({error})") from error
    with handle:
        root = handle.get("model_weights", handle)
        if "layer_names" not in root.attrs:
            raise CheckpointLayoutError(
                f"{path.name}: an HDF5 file without Keras weights (no 'layer_names' attribute)"
            )
        models: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for group_name in (_text(n) for n in root.attrs["layer_names"]):
            group = root[group_name]
            names = [_text(n) for n in group.attrs.get("weight_names", [])]
            owners = {n.rpartition("/")[0] for n in names}
            nested = len(owners) > 1  # a model inside the model: its layers by their names
            for weight_name in names:
                layer, _, leaf = weight_name.rpartition("/")
                model, key = (group_name, layer) if nested else ("", group_name)
                models.setdefault(model, {}).setdefault(key, {})[leaf.split(":", 1)[0]] = (
                    np.asarray(group[weight_name])
                )
    return models


def renumber(layers: Mapping[str, Any]) -> dict[str, str]:
    """Keras name → the name it would have had in a fresh session (each prefix from ``_1``)."""
    lowest: dict[str, int] = {}
    for name in layers:
        match = _NAME.match(name)
        if match:
            prefix, uid = match["prefix"], int(match["uid"])
            lowest[prefix] = min(lowest.get(prefix, uid), uid)
    out = {}
    for name in layers:
        match = _NAME.match(name)
        out[name] = (
            f"{match['prefix']}_{int(match['uid']) - lowest[match['prefix']] + 1}"
            if match
            else name
        )
    return out


def _prefix(name: str) -> str:
    match = _NAME.match(name)
    return match["prefix"] if match else name


def keras_state(
    module: torch.nn.Module,
    layers: Mapping[str, Mapping[str, np.ndarray]],
    *,
    network: str,
    source: str,
) -> dict[str, torch.Tensor]:
    """Keras ``layers`` (``{name: {weight: array}}``) as ``module``'s state dict, strictly."""
    renamed = renumber(layers)
    file_layers = {renamed[k]: v for k, v in layers.items()}
    ours = dict(module.layers.items())  # type: ignore[union-attr]
    missing = [n for n in ours if n not in file_layers]
    unexpected = [n for n in file_layers if n not in ours]
    shapes, state = [], {}
    for name in (n for n in ours if n in file_layers):
        layer, weights = ours[name], file_layers[name]
        table = KERAS_WEIGHTS.get(_prefix(name), {})
        expected = {w: p for w, p in layer.state_dict().items() if w != "num_batches_tracked"}
        if set(weights) != set(table) or set(table.values()) != set(expected):
            shapes.append(f"{name} weights {sorted(weights)} != {sorted(table)}")
            continue
        for keras_name, ours_name in table.items():
            array = torch.from_numpy(np.array(weights[keras_name], dtype=np.float32))
            if keras_name == "kernel":
                array = array.permute(3, 2, 0, 1)  # HWIO → OIHW; (h, w, out, in) → (in, out, h, w)
            target = expected[ours_name]
            if tuple(array.shape) != tuple(target.shape):
                keras_shape = tuple(np.shape(weights[keras_name]))
                shapes.append(f"{name}/{keras_name}:0 {keras_shape} does not fit ours")
                continue
            state[f"layers.{name}.{ours_name}"] = array.contiguous()
        if "num_batches_tracked" in layer.state_dict():
            state[f"layers.{name}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    problems = [
        f"{len(items)} {kind}: {', '.join(items[:LISTED])}{' ...' if len(items) > LISTED else ''}"
        for kind, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
        if items
    ]
    if problems:
        raise CheckpointLayoutError(
            f"{source}: {network} does not match our {type(module).__name__} "
            f"({_describe(module)}): " + "; ".join(problems)
        )
    return state


def _describe(module: torch.nn.Module) -> str:
    variant = getattr(module, "variant", None)
    audio = getattr(module, "audio", "")
    return f"{variant + ', ' if variant else ''}audio {audio}"


def kind_of(layers: Mapping[str, Any]) -> str | None:
    """``generator`` (it has transposed convolutions), ``disc`` (instance norms) or ``None``."""
    prefixes = {_prefix(n) for n in layers}
    if "conv2d_transpose" in prefixes:
        return "generator"
    if "instance_normalization" in prefixes:
        return "disc"
    return None


def _first_choice(options: tuple[str, ...], first: str) -> list[str]:
    return [first, *(o for o in options if o != first)] if first in options else list(options)


def match_network(
    layers: Mapping[str, Mapping[str, np.ndarray]],
    kind: str,
    width: int,
    variant: str,
    audio: str,
    source: str,
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state of the ``kind`` network whose layout fits ``layers`` (the configured
    variant/audio first); none fitting raises the configured layout's error."""
    first_error: CheckpointLayoutError | None = None
    for audio_choice in _first_choice(tuple(AUDIO_SHAPES), audio):
        for variant_choice in _first_choice(VARIANTS, variant) if kind == "generator" else [""]:
            module = (
                LipGANGeneratorNet(width, variant_choice, audio_choice)
                if kind == "generator"
                else LipGANDiscriminator(width, audio_choice)
            )
            try:
                state = keras_state(module, layers, network=kind, source=source)
            except CheckpointLayoutError as error:
                first_error = first_error or error
                continue
            module.load_state_dict(state, strict=True)
            return state, {"variant": variant_choice, "audio": audio_choice}
    assert first_error is not None
    raise first_error


def _split(path: Path) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The networks of a file: ``{"generator": layers, "disc": layers}`` (those it holds)."""
    found: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for model, layers in read_keras_h5(path).items():
        kind = kind_of(layers)
        if kind is not None and kind not in found:
            found[kind] = layers
        elif model == "" and layers:
            found.setdefault("unknown", layers)
    return found


def import_official(path: Path | str, out: Path | str, model_cfg: Mapping[str, Any]) -> Path:
    """Upstream's Keras ``gen.h5`` (and ``disc.h5`` beside it, or a combined file) → our
    checkpoint with the experiment's model config (variant/audio as the file holds them)."""
    from talking_heads.models.lipgan.module import DEFAULT_TRAIN

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official checkpoint not found: {path}")
    if not is_hdf5(path):
        raise CheckpointLayoutError(
            f"{path.name} is not a Keras HDF5 file: LipGAN's official checkpoints are Keras "
            "2.2.4 .h5 files (gen.h5, disc.h5, lipgan_residual_mfcc.h5), not PyTorch files"
        )
    width = int(model_cfg.get("width", 1))
    variant = str(model_cfg.get("variant", "residual"))
    audio = str(model_cfg.get("audio", "mel80x27"))
    found = _split(path)
    if "generator" not in found:
        held = "a discriminator" if "disc" in found else "no LipGAN network"
        raise CheckpointLayoutError(
            f"{path.name} holds {held}, not the LipGAN generator (give gen.h5; disc.h5 beside "
            "it is imported too)"
        )
    networks: dict[str, dict[str, torch.Tensor]] = {}
    gen_state, chosen = match_network(
        found["generator"], "generator", width, variant, audio, path.name
    )
    networks["generator"] = gen_state
    disc_layers, disc_source = found.get("disc"), path.name
    sibling = path.parent / DISC_FILE
    if disc_layers is None and sibling.is_file() and sibling != path:
        disc_layers, disc_source = _split(sibling).get("disc"), sibling.name
    if disc_layers is not None:
        networks["disc"], _ = match_network(
            disc_layers, "disc", width, variant, chosen["audio"], disc_source
        )
    else:
        warnings.warn(
            f"{path.name}: no discriminator (no {DISC_FILE} beside it): a freshly initialised "
            "one is written",
            RuntimeWarning,
            stacklevel=2,
        )
        networks["disc"] = LipGANDiscriminator(width, chosen["audio"]).state_dict()
    hyper_parameters = {
        "width": width,
        "variant": chosen["variant"],
        "audio": chosen["audio"],
        "resolution": int(model_cfg.get("resolution", 96)),
        "train": {**DEFAULT_TRAIN, **dict(model_cfg.get("train") or {})},
    }
    return write_lightning_checkpoint(
        out, networks, hyper_parameters, official=path, method="lipgan", epoch=None
    )
