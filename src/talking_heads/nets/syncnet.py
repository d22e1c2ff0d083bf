"""SyncNet (Chung & Zisserman, 2016) as joonson/syncnet_python builds it, for LSE-D / LSE-C.

:class:`SyncNet` is ``SyncNetModel.S`` with its parameter names, so ``syncnet_v2.model`` (a
plain state dict) loads strictly: an audio stream on MFCC windows ``(N, 1, 13, 20)`` and a
lip stream on 5-frame BGR 0-255 windows ``(N, 3, 5, 224, 224)``, each to 1024-d embeddings.
"""

from __future__ import annotations

from torch import Tensor, nn

from talking_heads.weights import load_state_dict, resolve


def _bn_relu(kind: type[nn.Module], channels: int) -> list[nn.Module]:
    return [kind(channels), nn.ReLU(inplace=True)]


class SyncNet(nn.Module):
    """syncnet_python's ``SyncNetModel.S`` with its parameter names (``netcnnaud``,
    ``netfcaud``, ``netcnnlip``, ``netfclip``), so ``syncnet_v2.model`` loads strictly."""

    def __init__(self, embedding: int = 1024) -> None:
        super().__init__()
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, 64, 3, 1, 1),
            *_bn_relu(nn.BatchNorm2d, 64),
            nn.MaxPool2d(1, 1),
            nn.Conv2d(64, 192, 3, 1, 1),
            *_bn_relu(nn.BatchNorm2d, 192),
            nn.MaxPool2d(3, (1, 2)),
            nn.Conv2d(192, 384, 3, padding=1),
            *_bn_relu(nn.BatchNorm2d, 384),
            nn.Conv2d(384, 256, 3, padding=1),
            *_bn_relu(nn.BatchNorm2d, 256),
            nn.Conv2d(256, 256, 3, padding=1),
            *_bn_relu(nn.BatchNorm2d, 256),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 512, (5, 4)),
            *_bn_relu(nn.BatchNorm2d, 512),
        )
        self.netfcaud = self._head(embedding)
        self.netfclip = self._head(embedding)
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2)),
            *_bn_relu(nn.BatchNorm3d, 96),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)),
            *_bn_relu(nn.BatchNorm3d, 256),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)),
            *_bn_relu(nn.BatchNorm3d, 256),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)),
            *_bn_relu(nn.BatchNorm3d, 256),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)),
            *_bn_relu(nn.BatchNorm3d, 256),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(256, 512, (1, 6, 6)),
            *_bn_relu(nn.BatchNorm3d, 512),
        )

    @staticmethod
    def _head(embedding: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding)
        )

    def forward_aud(self, mfcc: Tensor) -> Tensor:
        """Audio embeddings of MFCC windows ``(N, 1, 13, 20)``."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: Tensor) -> Tensor:
        """Lip embeddings of BGR 0-255 frame windows ``(N, 3, 5, 224, 224)``."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))


def load_syncnet() -> SyncNet:
    """SyncNet with ``syncnet_v2.model`` (strict keys)."""
    network = SyncNet()
    network.load_state_dict(load_state_dict(resolve("syncnet")))
    return network
