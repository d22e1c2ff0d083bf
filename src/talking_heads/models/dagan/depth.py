"""DaGAN's frozen face-depth network (CVPR2022-DaGAN ``depth/``, a monodepth2 encoder-decoder).

:class:`DepthEncoder` is upstream's ``depth.ResnetEncoder``: a torchvision ResNet (18 in
``demo.py``, 50 in ``modules/model.py``) on ``(x − 0.45) / 0.225``, returning the features after
``relu`` and after each of ``layer1``–``layer4``. :class:`DepthDecoder` is
``depth.DepthDecoder(num_ch_enc, scales=range(4))``: five ELU conv blocks with nearest ×2
upsampling and U-Net skips, and a sigmoid disparity head per scale. Their state-dict keys are
upstream's (``encoder.layer1.0.conv1.weight``, ``decoder.<i>.conv.conv.weight``), so the files
``encoder.pth`` / ``depth.pth`` load strictly.

Deviations: the ResNet's ImageNet classifier ``encoder.fc`` (never used by the encoder) is not
built; :func:`official_depth_states` drops its two keys from upstream's ``encoder.pth``, as
well as monodepth2's non-tensor entries (``height``, ``width``, ``use_stereo``), which
``demo.py`` also filters out. The decoder computes only the full-resolution disparity
``("disp", 0)``, the only output DaGAN uses; the heads of scales 1–3 keep their weights (they
are in the official files) but are not evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from talking_heads.models.checkpoints import strict_state

#: ResNet depths torchvision builds (upstream's ``ResnetEncoder`` accepts the same)
RESNETS = {
    18: torchvision.models.resnet18,
    34: torchvision.models.resnet34,
    50: torchvision.models.resnet50,
    101: torchvision.models.resnet101,
    152: torchvision.models.resnet152,
}
#: upstream's file names inside a depth-model folder (``depth/models/weights_19/``)
ENCODER_FILE = "encoder.pth"
DECODER_FILE = "depth.pth"
#: weights-registry names of the released depth models, by ResNet depth
REGISTERED = {18: "dagan_depth18", 50: "dagan_depth50"}


class DepthEncoder(nn.Module):
    """monodepth2's ResNet encoder: five feature maps at 1/2 … 1/32 of the input size."""

    def __init__(self, num_layers: int = 18) -> None:
        super().__init__()
        if num_layers not in RESNETS:
            raise ValueError(
                f"{num_layers} is not a valid number of resnet layers {sorted(RESNETS)}"
            )
        self.num_layers = num_layers
        self.encoder = RESNETS[num_layers](weights=None)
        self.encoder.fc = nn.Identity()  # the classifier head is never used
        expansion = 4 if num_layers > 34 else 1
        self.num_ch_enc = [64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        net = self.encoder
        x = net.relu(net.bn1(net.conv1((image - 0.45) / 0.225)))
        features = [x]
        features.append(net.layer1(net.maxpool(x)))
        for layer in (net.layer2, net.layer3, net.layer4):
            features.append(layer(features[-1]))
        return features


class Conv3x3(nn.Module):
    """Reflection padding 1 then a 3×3 convolution (upstream ``depth.layers.Conv3x3``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    """:class:`Conv3x3` then ELU (upstream ``depth.layers.ConvBlock``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(self.conv(x))


class DepthDecoder(nn.Module):
    """monodepth2's disparity decoder; ``forward`` returns the full-resolution disparity.

    ``decoder`` is upstream's ModuleList in upstream's order: ``upconv`` (i, 0) and (i, 1) for
    i = 4 … 0 (indices 0–9), then one ``dispconv`` per scale (indices 10 …).
    """

    NUM_CH_DEC = (16, 32, 64, 128, 256)

    def __init__(
        self,
        num_ch_enc: Sequence[int],
        scales: Sequence[int] = range(4),
        num_output_channels: int = 1,
        use_skips: bool = True,
    ) -> None:
        super().__init__()
        self.num_ch_enc = [int(c) for c in num_ch_enc]
        self.scales = list(scales)
        self.use_skips = use_skips
        blocks: list[nn.Module] = []
        for i in range(4, -1, -1):
            num_in = self.num_ch_enc[-1] if i == 4 else self.NUM_CH_DEC[i + 1]
            blocks.append(ConvBlock(num_in, self.NUM_CH_DEC[i]))
            num_in = self.NUM_CH_DEC[i] + (self.num_ch_enc[i - 1] if use_skips and i > 0 else 0)
            blocks.append(ConvBlock(num_in, self.NUM_CH_DEC[i]))
        for scale in self.scales:
            blocks.append(Conv3x3(self.NUM_CH_DEC[scale], num_output_channels))
        self.decoder = nn.ModuleList(blocks)

    def upconv(self, level: int, index: int) -> nn.Module:
        """Upstream's ``convs[("upconv", level, index)]``."""
        return self.decoder[2 * (4 - level) + index]

    def dispconv(self, scale: int) -> nn.Module:
        """Upstream's ``convs[("dispconv", scale)]``."""
        return self.decoder[10 + self.scales.index(scale)]

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for level in range(4, -1, -1):
            x = F.interpolate(self.upconv(level, 0)(x), scale_factor=2, mode="nearest")
            if self.use_skips and level > 0:
                x = torch.cat([x, features[level - 1]], dim=1)
            x = self.upconv(level, 1)(x)
        return torch.sigmoid(self.dispconv(0)(x))


def build_depth(depth_params: Mapping[str, Any] | None = None) -> tuple[DepthEncoder, DepthDecoder]:
    """The depth encoder and decoder as upstream builds them (``scales=range(4)``)."""
    encoder = DepthEncoder(int((depth_params or {}).get("num_layers", 18)))
    return encoder, DepthDecoder(encoder.num_ch_enc, scales=range(4))


def estimate_depth(encoder: nn.Module, decoder: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The disparity ``(B, 1, H, W)`` in (0, 1) of images ``(B, 3, H, W)`` in [0, 1]
    (upstream's ``depth_decoder(depth_encoder(x))[("disp", 0)]``)."""
    return decoder(encoder(image))


def official_depth_states(
    encoder: DepthEncoder,
    decoder: DepthDecoder,
    encoder_state: Mapping[str, Any],
    decoder_state: Mapping[str, Any],
    *,
    source: str,
) -> dict[str, dict[str, torch.Tensor]]:
    """Upstream's ``encoder.pth`` / ``depth.pth`` dicts checked strictly against our modules.

    From the encoder file, the unused ``encoder.fc.*`` classifier and monodepth2's non-tensor
    entries are dropped; every other key must match (:func:`strict_state`).
    """
    encoder_state = {
        k: v
        for k, v in encoder_state.items()
        if isinstance(v, torch.Tensor) and not k.startswith("encoder.fc.")
    }
    return {
        "depth_encoder": strict_state(
            encoder, encoder_state, network="depth_encoder", source=source
        ),
        "depth_decoder": strict_state(
            decoder, dict(decoder_state), network="depth_decoder", source=source
        ),
    }


def depth_files(depth_pretrained: bool | str | Path, num_layers: int) -> tuple[Path, Path]:
    """The encoder and decoder files of ``depth_pretrained``.

    ``True``: the registered files of the released ``num_layers`` model in the weights
    directory (``weights_19/`` for ResNet-18, ``depth_face_model_Voxceleb2_10w/`` for
    ResNet-50); a path: a folder laid out as upstream's ``depth/models/<name>/``.
    """
    from talking_heads import weights

    if num_layers not in REGISTERED:
        raise ValueError(
            f"no released DaGAN depth model has a ResNet-{num_layers} encoder "
            f"(released: {sorted(REGISTERED)}); set depth_pretrained=false for a randomly "
            "initialised depth network"
        )
    encoder_spec = weights.WEIGHTS.get(REGISTERED[num_layers] + "_encoder")
    decoder_spec = weights.WEIGHTS.get(REGISTERED[num_layers] + "_decoder")
    if depth_pretrained is True:
        paths = (
            weights.weights_dir() / encoder_spec.filename,
            weights.weights_dir() / decoder_spec.filename,
        )
    else:
        folder = Path(depth_pretrained)
        paths = (folder / ENCODER_FILE, folder / DECODER_FILE)
    for path in paths:
        if not path.is_file():
            raise weights.MissingWeightsError(
                f"DaGAN depth weights not found at {path}: download the ResNet-{num_layers} "
                f"face-depth model's {ENCODER_FILE} and {DECODER_FILE} from {encoder_spec.url} "
                f"into {path.parent}/, or set depth_pretrained=false for a randomly initialised "
                "depth network"
            )
    return paths


def load_depth_weights(
    depth_pretrained: bool | str | Path, num_layers: int
) -> tuple[dict[str, Any], dict[str, Any], tuple[Path, Path]]:
    """Upstream's ``encoder.pth`` and ``depth.pth`` dicts (see :func:`depth_files`) and their
    paths, each file sha256-checked against the weights registry. No checksum is published for
    them, so loading needs the registry's unverified opt-in
    (``TALKING_HEADS_ALLOW_UNVERIFIED_WEIGHTS=1``) until one is registered."""
    from talking_heads import weights

    paths = depth_files(depth_pretrained, num_layers)
    states = [
        weights.load_state_dict(
            path, sha256=weights.WEIGHTS.get(f"{REGISTERED[num_layers]}_{part}").sha256
        )
        for path, part in zip(paths, ("encoder", "decoder"), strict=True)
    ]
    return states[0], states[1], paths
