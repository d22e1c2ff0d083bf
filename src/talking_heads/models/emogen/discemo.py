"""EmoGen's emotion discriminator ``DISCEMO`` (``models/emo_disc.py``) with the official
parameter names: five stride-2 3×3 convs (LeakyReLU 0.3), ``projector`` (4608→2048→512), a
one-layer LSTM and ``cls`` (6 classes) on the last time step.

Upstream keeps the optimiser inside the network (Adam lr 1e-6, betas (0.5, 0.999), StepLR
150 epochs × 0.1); here :func:`emotion_disc_optimizer` builds the same pair outside it, so that
the state dict holds only the weights, as ``emotion_disc_train.py``'s ``disc_emo_{step}.pth``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from talking_heads.models.checkpoints import CheckpointLayoutError, read_official, strict_state
from talking_heads.models.lipsync.blocks import scaled

#: (channels, kernel, stride) of ``conv_1`` … ``conv_5``
FILTERS = ((64, 3, 2), (128, 3, 2), (256, 3, 2), (512, 3, 2), (512, 3, 2))
#: upstream's optimiser and schedule of the discriminator
LR = 1.0e-6
BETAS = (0.5, 0.999)
STEP_SIZE = 150
GAMMA = 0.1


class DISCEMO(nn.Module):
    """Emotion classifier of face windows ``(B, 3, T, 96, 96)`` (BGR in [0, 1]) → logits
    ``(B, 6)``. ``width`` divides the channel and feature counts (1: the published network)."""

    def __init__(self, width: int = 1, classes: int = 6, resolution: int = 96) -> None:
        super().__init__()
        cin = 3
        size = resolution
        for index, (channels, kernel, stride) in enumerate(FILTERS):
            conv = nn.Conv2d(cin, scaled(channels, width), kernel, stride, kernel // 2)
            setattr(self, f"conv_{index + 1}", nn.Sequential(conv, nn.LeakyReLU(0.3)))
            cin = scaled(channels, width)
            size = (size - 1) // stride + 1
        hidden = scaled(512, width)
        self.projector = nn.Sequential(
            nn.Linear(cin * size * size, scaled(2048, width)),
            nn.LeakyReLU(0.3),
            nn.Linear(scaled(2048, width), hidden),
        )
        self.rnn_1 = nn.LSTM(hidden, hidden, 1, bidirectional=False, batch_first=True)
        self.cls = nn.Sequential(nn.Linear(hidden, classes))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        # upstream's raw ``view(t·n, c, w, h)`` of the (n, c, t, w, h) window, kept as is: it
        # regroups the channel-time planes rather than separating the frames
        n, c, t, w, h = video.shape
        x = video.reshape(t * n, c, w, h)
        for index in range(len(FILTERS)):
            x = getattr(self, f"conv_{index + 1}")(x)
        x = self.projector(x.reshape(n, t, -1))
        x, _ = self.rnn_1(x)
        return self.cls(x[:, -1, :])


def emotion_disc_optimizer(
    disc: DISCEMO, lr: float = LR
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.StepLR]:
    """Upstream's ``disc_emo.opt`` and ``disc_emo.scheduler``."""
    opt = torch.optim.Adam(disc.parameters(), lr=lr, betas=BETAS)
    return opt, torch.optim.lr_scheduler.StepLR(opt, STEP_SIZE, gamma=GAMMA)


def emotion_disc_state(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """DISCEMO's weights from ``emotion_disc_train.py``'s raw state dict
    (``disc_emo_{step}.pth``), from ``train.py``'s ``disc_emo_checkpoint_step*.pth``
    (``state_dict`` + ``optimizer``) or from one of our checkpoints (``emotion_disc.``)."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointLayoutError("no DISCEMO state dict in the file")
    prefix = "emotion_disc."
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return {k.replace("module.", "", 1): v for k, v in state.items()}


def load_emotion_disc(path: Path | str, disc: DISCEMO) -> DISCEMO:
    """Load a pre-trained DISCEMO file into ``disc`` (keys and shapes checked)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"emotion discriminator checkpoint not found: {path}")
    state = emotion_disc_state(read_official(path))
    disc.load_state_dict(
        strict_state(disc, state, network="emotion_disc", source=path.name), strict=True
    )
    return disc
