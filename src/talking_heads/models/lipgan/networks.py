"""LipGAN's networks (Rudrabha/LipGAN ``generator.py``, ``discriminator.py``; Keras 2.2.4 on
TensorFlow 1) in PyTorch, NCHW.

Each network is written as upstream's Keras code builds it, on a small symbolic tape
(:class:`KerasGraph`): every layer call takes its Keras auto-name (``conv2d_7``,
``batch_normalization_7``, ``conv2d_transpose_2``, ``instance_normalization_3``) from a
per-prefix counter as ``K.get_uid`` does, so that a layer group of a Keras ``.h5`` file maps
key by key onto ``layers.<name>`` of our module. As in a Keras ``Model``, layers that do not
lead to the output (the basic generator's discarded ``conv_block(input_audio, 64)`` and
``conv_block(embedding, 512, 1)``) use up their names but are not part of the network.

Keras semantics kept exactly:

- ``padding='same'`` as TensorFlow pads: ``total = max((ceil(n/s) - 1)·s + k - n, 0)``, the
  smaller half before (asymmetric for stride 2 on even sizes, for stride 3 on 80 mel rows);
- ``Conv2DTranspose(padding='same')`` gives ``n·s`` outputs: the full transposed
  convolution is cropped by TensorFlow's ``pad_before``; its kernel is ``(h, w, out, in)``;
- ``BatchNormalization(momentum=.8)``: epsilon 1e-3, running statistics updated as
  ``0.8·old + 0.2·batch`` (PyTorch ``momentum=0.2``; both use the unbiased batch variance);
- keras-contrib's ``InstanceNormalization()`` with its default ``axis=None``: one mean and
  one standard deviation per sample over *all* of H, W and C, ``(x - mean) / (std + 1e-3)``
  (epsilon added to the standard deviation), a single scalar ``gamma`` and ``beta``;
- Glorot-uniform kernels and zero biases (Keras defaults).

Audio inputs (``audio``): ``mfcc12x35`` is the master branch's MATLAB MFCC window (12
coefficients × 35 steps of 10 ms); ``mel80x27`` is the ``fully_pythonic`` branch's Wav2Lip
log-mel window (80 bands × 27 columns of 12.5 ms), whose audio encoders are taken from the
branch's ``create_model``/``create_model_residual`` (strides 3, (3, 1), 3, then a 3×3 valid
convolution to 1×1).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

#: Keras BatchNormalization / keras-contrib InstanceNormalization epsilon
KERAS_EPSILON = 1e-3
#: upstream ``BatchNormalization(momentum=.8)`` as PyTorch's momentum
BN_MOMENTUM = 1.0 - 0.8
#: the contrastive loss's margin (``discriminator.contrastive_loss``)
MARGIN = 1.0
AUDIO_SHAPES = {"mfcc12x35": (12, 35), "mel80x27": (80, 27)}
VARIANTS = ("residual", "basic")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``SAME`` padding ``(before, after)`` of one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class KerasConv2d(nn.Conv2d):
    """``keras.layers.Conv2D`` (``same`` or ``valid``), Glorot-uniform kernel, zero bias."""

    def __init__(self, cin: int, cout: int, kernel: Any, stride: Any, padding: str) -> None:
        super().__init__(cin, cout, _pair(kernel), _pair(stride), padding=0)
        self.keras_padding = padding
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.keras_padding == "same":
            top, bottom = same_padding(x.shape[2], self.kernel_size[0], self.stride[0])
            left, right = same_padding(x.shape[3], self.kernel_size[1], self.stride[1])
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class KerasConvTranspose2d(nn.ConvTranspose2d):
    """``keras.layers.Conv2DTranspose(padding='same')``: ``n·s`` outputs per axis."""

    def __init__(self, cin: int, cout: int, kernel: Any, stride: Any) -> None:
        super().__init__(cin, cout, _pair(kernel), _pair(stride), padding=0)
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = super().forward(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = x.shape[2] * sh, x.shape[3] * sw
        top = max(kh - sh, 0) // 2
        left = max(kw - sw, 0) // 2
        return full[:, :, top : top + h, left : left + w]


class KerasBatchNorm2d(nn.BatchNorm2d):
    """``BatchNormalization(momentum=.8)``: epsilon 1e-3, running stats ``0.8·old + 0.2·new``."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=KERAS_EPSILON, momentum=BN_MOMENTUM)


class KerasInstanceNorm(nn.Module):
    """keras-contrib ``InstanceNormalization()`` (``axis=None``): per sample over C, H, W,
    ``(x - mean) / (std + 1e-3) · gamma + beta`` with scalar ``gamma`` and ``beta``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        std = x.var(dim=dims, keepdim=True, unbiased=False).sqrt() + KERAS_EPSILON
        return (x - mean) / std * self.weight + self.bias


@dataclass
class _Node:
    op: str
    inputs: tuple[int, ...]
    channels: int
    layer: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


class KerasGraph:
    """A tape of Keras layer calls (see the module docstring); ``width`` divides filters."""

    def __init__(self, width: int = 1) -> None:
        self.width = max(1, int(width))
        self.uids: Counter[str] = Counter()
        self.nodes: list[_Node] = []
        self.modules: dict[str, nn.Module] = {}
        self.inputs: dict[str, int] = {}

    def _name(self, prefix: str) -> str:
        self.uids[prefix] += 1
        return f"{prefix}_{self.uids[prefix]}"

    def _add(self, node: _Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def filters(self, n: int) -> int:
        return max(1, n // self.width)

    def input(self, name: str, channels: int) -> int:
        self.inputs[name] = self._add(_Node("input", (), channels, args={"name": name}))
        return self.inputs[name]

    def conv(
        self,
        x: int,
        filters: int,
        kernel: Any = 3,
        strides: Any = 1,
        padding="same",
        *,
        full: bool = False,
    ) -> int:
        cout = filters if full else self.filters(filters)
        name = self._name("conv2d")
        self.modules[name] = KerasConv2d(self.nodes[x].channels, cout, kernel, strides, padding)
        return self._add(_Node("layer", (x,), cout, name))

    def conv_t(self, x: int, filters: int, kernel: Any = 3, strides: Any = 2) -> int:
        cout = self.filters(filters)
        name = self._name("conv2d_transpose")
        self.modules[name] = KerasConvTranspose2d(self.nodes[x].channels, cout, kernel, strides)
        return self._add(_Node("layer", (x,), cout, name))

    def batch_norm(self, x: int) -> int:
        name = self._name("batch_normalization")
        self.modules[name] = KerasBatchNorm2d(self.nodes[x].channels)
        return self._add(_Node("layer", (x,), self.nodes[x].channels, name))

    def instance_norm(self, x: int) -> int:
        name = self._name("instance_normalization")
        self.modules[name] = KerasInstanceNorm()
        return self._add(_Node("layer", (x,), self.nodes[x].channels, name))

    def op(self, op: str, *inputs: int, **args: Any) -> int:
        channels = (
            sum(self.nodes[i].channels for i in inputs)
            if op == "concat"
            else self.nodes[inputs[0]].channels
        )
        return self._add(_Node(op, tuple(inputs), channels, args=args))

    def reachable(self, output: int) -> list[int]:
        """The nodes the output depends on, in tape order (a Keras ``Model``'s layers)."""
        seen, todo = set(), [output]
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(self.nodes[i].inputs)
        return sorted(seen)


class KerasNetwork(nn.Module):
    """A network run from a :class:`KerasGraph`: ``layers`` keyed by the Keras names."""

    def __init__(self, graph: KerasGraph, output: int) -> None:
        super().__init__()
        self.order = graph.reachable(output)
        self.nodes = graph.nodes
        self.output = output
        self.input_names = {
            i: graph.nodes[i].args["name"] for i in self.order if graph.nodes[i].op == "input"
        }
        used = [graph.nodes[i].layer for i in self.order if graph.nodes[i].layer]
        self.layers = nn.ModuleDict({name: graph.modules[name] for name in used})

    def keras_layers(self) -> list[str]:
        """The Keras names of the weighted layers, in build order."""
        return list(self.layers)

    def run(self, **inputs: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {}
        for i in self.order:
            node = self.nodes[i]
            args = [values[j] for j in node.inputs]
            if node.op == "input":
                values[i] = inputs[node.args["name"]]
            elif node.op == "layer":
                values[i] = self.layers[node.layer](args[0])
            elif node.op == "relu":
                values[i] = F.relu(args[0])
            elif node.op == "leaky_relu":
                values[i] = F.leaky_relu(args[0], 0.2)
            elif node.op == "sigmoid":
                values[i] = torch.sigmoid(args[0])
            elif node.op == "add":
                values[i] = args[0] + args[1]
            elif node.op == "concat":  # Concatenate(axis=3) in NHWC is the channel axis
                values[i] = torch.cat(args, dim=1)
            elif node.op == "zero_pad":  # ZeroPadding2D(((top, bottom), (left, right)))
                (top, bottom), (left, right) = node.args["pads"]
                values[i] = F.pad(args[0], (left, right, top, bottom))
            elif node.op == "flatten":  # Keras flattens NHWC: channels last
                values[i] = args[0].permute(0, 2, 3, 1).flatten(1)
            elif node.op == "l2_normalize":  # K.l2_normalize(x, axis=1)
                x = args[0]
                values[i] = x / x.square().sum(1, keepdim=True).clamp_min(1e-12).sqrt()
            elif node.op == "distance":
                values[i] = (args[0] - args[1]).square().sum(1, keepdim=True).sqrt()
            else:  # pragma: no cover - the builders only record the ops above
                raise ValueError(f"unknown op {node.op}")
        return values[self.output]


# -- upstream's blocks -----------------------------------------------------------------------
def _gen_conv_block(
    g: KerasGraph, x: int, filters: int, kernel: Any = 3, strides: Any = 1, padding: str = "same"
) -> int:
    """``generator.conv_block``: Conv2D → BatchNormalization(momentum=.8) → ReLU."""
    return g.op("relu", g.batch_norm(g.conv(x, filters, kernel, strides, padding)))


def _gen_conv_t_block(
    g: KerasGraph, x: int, filters: int, kernel: Any = 3, strides: Any = 2
) -> int:
    """``generator.conv_t_block``: Conv2DTranspose('same') → BatchNormalization → ReLU."""
    return g.op("relu", g.batch_norm(g.conv_t(x, filters, kernel, strides)))


def _residual_block(g: KerasGraph, inp: int, filters: int) -> int:
    """``create_model_residual.residual_block``: two conv blocks, Add, ReLU."""
    x = _gen_conv_block(g, inp, filters)
    x = _gen_conv_block(g, x, filters)
    return g.op("relu", g.op("add", x, inp))


def _disc_conv_block(
    g: KerasGraph, x: int, filters: int, kernel: Any = 3, strides: Any = 2, padding: str = "same"
) -> int:
    """``discriminator.conv_block``: Conv2D → InstanceNormalization → LeakyReLU(0.2)."""
    return g.op("leaky_relu", g.instance_norm(g.conv(x, filters, kernel, strides, padding)))


def _audio_encoder_mfcc(g: KerasGraph, x: int, residual: bool) -> int:
    """The master branch's audio encoder on 12×35 MFCC windows."""
    if residual:
        x = _gen_conv_block(g, x, 128)
        for _ in range(3):
            x = _residual_block(g, x, 128)
        x = g.op("zero_pad", x, pads=((1, 0), (0, 0)))
        x = _gen_conv_block(g, x, 256, strides=(1, 2))
        for _ in range(2):
            x = _residual_block(g, x, 256)
        x = _gen_conv_block(g, x, 512, strides=2)
        for _ in range(2):
            x = _residual_block(g, x, 512)
        x = _gen_conv_block(g, x, 512, strides=2)
        x = _residual_block(g, x, 512)
        x = _gen_conv_block(g, x, 512, (4, 5), 1, padding="valid")
        return _gen_conv_block(g, x, 512, 1, 1)
    _gen_conv_block(g, x, 64)  # upstream's discarded block (its output is overwritten)
    x = _gen_conv_block(g, x, 128)
    x = g.op("zero_pad", x, pads=((1, 0), (0, 0)))
    x = _gen_conv_block(g, x, 256, strides=(1, 2))
    x = _gen_conv_block(g, x, 256)
    x = _gen_conv_block(g, x, 256, strides=2)
    x = _gen_conv_block(g, x, 512, strides=2)
    x = _gen_conv_block(g, x, 512, (4, 5), 1, padding="valid")
    return _gen_conv_block(g, x, 256, 1, 1)


def _audio_encoder_mel(g: KerasGraph, x: int, residual: bool) -> int:
    """The ``fully_pythonic`` branch's audio encoder on 80×27 mel windows."""
    for filters, strides in ((32, 1), (64, 3), (128, (3, 1)), (256, 3)):
        x = _gen_conv_block(g, x, filters, strides=strides)
        for _ in range(2):
            x = _residual_block(g, x, filters) if residual else _gen_conv_block(g, x, filters)
    x = _gen_conv_block(g, x, 512, strides=1, padding="valid")
    return _gen_conv_block(g, x, 512, 1, 1)


def build_generator_graph(
    width: int = 1, variant: str = "residual", audio: str = "mel80x27"
) -> tuple[KerasGraph, int]:
    """Upstream's ``create_model_residual`` (``variant="residual"``, train.py's default) or
    ``create_model`` (``"basic"``) on the tape."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown LipGAN generator variant {variant!r}; choose from {VARIANTS}")
    if audio not in AUDIO_SHAPES:
        raise ValueError(f"unknown LipGAN audio input {audio!r}; choose from {list(AUDIO_SHAPES)}")
    residual = variant == "residual"
    g = KerasGraph(width)
    face = g.input("input_face", 6)
    if residual:
        identity = _gen_conv_block(g, face, 32, kernel=7)
        x = _gen_conv_block(g, identity, 64, kernel=5, strides=2)
        skips = []
        for filters, blocks in ((64, 2), (128, 3), (256, 2), (512, 2)):
            if filters != 64:
                x = _gen_conv_block(g, x, filters, 3, 2)
            for _ in range(blocks):
                x = _residual_block(g, x, filters)
            skips.append(x)
        x1, x2, x3, x4 = skips
        x5 = _gen_conv_block(g, x4, 512, 3, 2)
        x6 = _gen_conv_block(g, x5, 512, 3, 1, padding="valid")
        x7 = _gen_conv_block(g, x6, 512, 1, 1)
    else:
        identity = _gen_conv_block(g, face, 32, kernel=11)
        x1 = _gen_conv_block(g, identity, 64, kernel=7, strides=2)
        x2 = _gen_conv_block(g, x1, 128, 5, 2)
        x3 = _gen_conv_block(g, x2, 256, 3, 2)
        x4 = _gen_conv_block(g, x3, 512, 3, 2)
        x5 = _gen_conv_block(g, x4, 512, 3, 2)
        x6 = _gen_conv_block(g, x5, 512, 3, 1, padding="valid")
        x7 = _gen_conv_block(g, x6, 256, 1, 1)
    sound = g.input("input_audio", 1)
    encode = _audio_encoder_mfcc if audio == "mfcc12x35" else _audio_encoder_mel
    a = encode(g, sound, residual)
    embedding = g.op("concat", x7, a)
    if not residual:
        _gen_conv_block(g, embedding, 512, 1)  # upstream's discarded block
    x = _gen_conv_t_block(g, embedding, 512, 3, 3)
    x = g.op("concat", x5, x)
    for filters, skip in ((512, x4), (256, x3), (128, x2), (64, x1)):
        x = _gen_conv_t_block(g, x, filters)
        if residual:
            for _ in range(2):
                x = _residual_block(g, x, filters)
        x = g.op("concat", skip, x)
    x = _gen_conv_t_block(g, x, 32)
    x = g.op("concat", identity, x)
    x = _gen_conv_block(g, x, 16)
    x = _gen_conv_block(g, x, 16)
    x = g.conv(x, 3, 1, 1, "same", full=True)
    return g, g.op("sigmoid", x)


def build_discriminator_graph(width: int = 1, audio: str = "mel80x27") -> tuple[KerasGraph, int]:
    """Upstream's ``discriminator.create_model``: face and audio embeddings, L2-normalised,
    and their Euclidean distance ``d`` (B, 1)."""
    if audio not in AUDIO_SHAPES:
        raise ValueError(f"unknown LipGAN audio input {audio!r}; choose from {list(AUDIO_SHAPES)}")
    g = KerasGraph(width)
    x = g.input("input_face_disc", 3)
    for filters, kernel in ((64, 7), (128, 5), (256, 3), (512, 3), (512, 3)):
        x = _disc_conv_block(g, x, filters, kernel)
    x = g.conv(x, 512, 3, 1, "valid")
    face = g.op("l2_normalize", g.op("flatten", x))
    a = g.input("input_audio_disc", 1)
    if audio == "mfcc12x35":
        a = _disc_conv_block(g, a, 64, 3, 1)
        a = _disc_conv_block(g, a, 128, 3, 1)
        a = g.op("zero_pad", a, pads=((1, 0), (0, 0)))
        a = _disc_conv_block(g, a, 256, 3, (1, 2))
        a = _disc_conv_block(g, a, 256, 3, 1)
        a = _disc_conv_block(g, a, 256, 3, 2)
        a = _disc_conv_block(g, a, 512, 3, 2)
        a = g.conv(a, 512, (4, 5), 1, "valid")
    else:
        a = _disc_conv_block(g, a, 32, strides=1)
        a = _disc_conv_block(g, a, 64, strides=3)
        a = _disc_conv_block(g, a, 128, strides=(3, 1))
        a = _disc_conv_block(g, a, 256, strides=3)
        a = _disc_conv_block(g, a, 512, strides=1, padding="valid")
        a = _disc_conv_block(g, a, 512, 1, strides=1)
    sound = g.op("l2_normalize", g.op("flatten", a))
    return g, g.op("distance", face, sound)


class LipGANGeneratorNet(KerasNetwork):
    """The generator: a 6-channel face (reference, then the lower-half-masked target; BGR in
    [0, 1]) and an audio window → the target face ``(B, 3, 96, 96)`` through a sigmoid."""

    def __init__(self, width: int = 1, variant: str = "residual", audio: str = "mel80x27"):
        graph, output = build_generator_graph(width, variant, audio)
        super().__init__(graph, output)
        self.width, self.variant, self.audio = int(width), variant, audio

    def forward(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.run(input_face=face, input_audio=audio)


class LipGANDiscriminator(KerasNetwork):
    """The audio-visual discriminator: a face ``(B, 3, 96, 96)`` and its audio window → the
    distance ``(B, 1)`` of their unit-norm embeddings (small: in sync)."""

    def __init__(self, width: int = 1, audio: str = "mel80x27") -> None:
        graph, output = build_discriminator_graph(width, audio)
        super().__init__(graph, output)
        self.width, self.audio = int(width), audio

    def forward(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.run(input_face_disc=face, input_audio_disc=audio)


def contrastive_loss(y_true: torch.Tensor, y_pred: torch.Tensor, margin: float = MARGIN):
    """Upstream's ``contrastive_loss``: ``mean((1 - y)·d² + y·max(0, margin - d)²)``; label
    0 is a synced (real) pair, 1 a fake or off-sync one."""
    y_true = y_true.to(y_pred.dtype)
    loss = (1 - y_true) * y_pred.square() + y_true * (margin - y_pred).clamp_min(0).square()
    return loss.mean()
