"""Wav2Lip's networks (``models/wav2lip.py``, ``models/syncnet.py``) with the official names:
the U-Net generator (optionally with EmoGen's emotion embedding at the bottleneck), the
``SyncNet_color`` lip-sync expert and the ``Wav2Lip_disc_qual`` visual-quality discriminator.

Faces are ``(B, C, 96, 96)`` BGR in [0, 1] (upstream reads frames with OpenCV and never
converts them), or ``(B, C, T, 96, 96)`` windows whose T frames are folded into the batch
frame-major as upstream does; mel windows are ``(B, 1, 80, 16)`` or ``(B, T, 1, 80, 16)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from talking_heads.models.lipsync.blocks import (
    Conv2d,
    Conv2dTranspose,
    NoNormConv2d,
    fold_time,
    mel_audio_encoder,
    residual_stage,
    scaled,
    unfold_time,
)

#: face-encoder stages of the generator: (channels, residual blocks), after the 7×7 stem
ENCODER_STAGES = ((32, 2), (64, 3), (128, 2), (256, 2), (512, 1))
#: decoder stages: (output channels, residual blocks); inputs follow from the skips
DECODER_STAGES = ((512, 1), (512, 2), (384, 2), (256, 2), (128, 2), (64, 2))


class Wav2LipUNet(nn.Module):
    """Wav2Lip's generator: a masked + a reference face (6 channels) and a mel window in,
    the face with a re-synthesised mouth out (sigmoid, 3 channels).

    ``emotions`` > 0 adds EmoGen's ``emotion_encoder`` (Linear 6→512→512 with LeakyReLU 0.2)
    whose embedding is concatenated to the audio embedding at the bottleneck (the first
    decoder block then takes 1024 channels). ``width`` divides the channel counts (demo).
    """

    def __init__(self, width: int = 1, emotions: int = 0) -> None:
        super().__init__()
        s = lambda n: scaled(n, width)
        stages: list[nn.Module] = [nn.Sequential(Conv2d(6, s(16), 7, 1, 3))]
        cin = s(16)
        for channels, residuals in ENCODER_STAGES:
            stages.append(nn.Sequential(*residual_stage(cin, s(channels), 2, residuals)))
            cin = s(channels)
        stages.append(nn.Sequential(Conv2d(cin, s(512), 3, 1, 0), Conv2d(s(512), s(512), 1, 1, 0)))
        self.face_encoder_blocks = nn.ModuleList(stages)
        self.emotions = emotions
        if emotions:
            self.emotion_encoder = nn.Sequential(
                nn.Linear(emotions, s(512)),
                nn.LeakyReLU(0.2),
                nn.Linear(s(512), s(512)),
                nn.LeakyReLU(0.2),
            )
        self.audio_encoder = mel_audio_encoder(width, (2, 2, 2, 1))
        skips = [s(c) for c in (512, 512, 256, 128, 64, 32, 16)]  # encoder maps, deepest first
        bottleneck = s(512) * (2 if emotions else 1)
        decoder: list[nn.Module] = [nn.Sequential(Conv2d(bottleneck, s(512), 1, 1, 0))]
        cin = s(512) + skips[0]
        for index, (channels, residuals) in enumerate(DECODER_STAGES):
            stride, padding, output_padding = (1, 0, 0) if index == 0 else (2, 1, 1)
            blocks: list[nn.Module] = [
                Conv2dTranspose(cin, s(channels), 3, stride, padding, output_padding)
            ]
            blocks += [Conv2d(s(channels), s(channels), 3, 1, 1, True) for _ in range(residuals)]
            decoder.append(nn.Sequential(*blocks))
            cin = s(channels) + skips[index + 1]
        self.face_decoder_blocks = nn.ModuleList(decoder)
        self.output_block = nn.Sequential(
            Conv2d(cin, s(32), 3, 1, 1), nn.Conv2d(s(32), 3, 1, 1, 0), nn.Sigmoid()
        )

    def forward(
        self,
        audio_sequences: torch.Tensor,
        face_sequences: torch.Tensor,
        emotion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Faces ``(B, 6, [T,] 96, 96)``, mels ``(B, [T,] 1, 80, 16)``, one-hot emotions
        ``(B, emotions)`` (the same for every frame of a window, as EmoGen repeats it)."""
        batch = audio_sequences.size(0)
        windowed = face_sequences.dim() > 4
        if windowed:
            steps = audio_sequences.size(1)
            audio_sequences = fold_time(audio_sequences, 1)
            face_sequences = fold_time(face_sequences, 2)
            if emotion is not None:
                emotion = emotion.repeat(steps, 1)
        x = self.audio_encoder(audio_sequences)
        if self.emotions:
            if emotion is None:
                raise ValueError("this generator takes an emotion (one-hot, 6 classes)")
            x = torch.cat((x, self.emotion_encoder(emotion).view(x.size(0), -1, 1, 1)), dim=1)
        feats = []
        y = face_sequences
        for block in self.face_encoder_blocks:
            y = block(y)
            feats.append(y)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), dim=1)
        x = self.output_block(x)
        return unfold_time(x, batch) if windowed else x


class SyncNetColor(nn.Module):
    """The lip-sync expert ``SyncNet_color``: 5 stacked BGR lower-half faces ``(B, 15, 48,
    96)`` and a mel window ``(B, 1, 80, 16)`` → L2-normalised 512-d embeddings (audio, face).
    The last layers end in ReLU, so their cosine similarity lies in [0, 1]."""

    def __init__(self, width: int = 1) -> None:
        super().__init__()
        s = lambda n: scaled(n, width)
        layers: list[nn.Module] = [Conv2d(15, s(32), 7, 1, 3)]
        layers += residual_stage(s(32), s(64), (1, 2), 2, kernel_size=5, padding=1)
        cin = s(64)
        for channels, residuals in ((128, 3), (256, 2), (512, 2)):
            layers += residual_stage(cin, s(channels), 2, residuals)
            cin = s(channels)
        layers += [Conv2d(cin, s(512), 3, 2, 1), Conv2d(s(512), s(512), 3, 1, 0)]
        layers += [Conv2d(s(512), s(512), 1, 1, 0)]
        self.face_encoder = nn.Sequential(*layers)
        self.audio_encoder = mel_audio_encoder(width, (2, 2, 2, 2))

    def forward(
        self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        face = self.face_encoder(face_sequences).flatten(1)
        audio = self.audio_encoder(audio_sequences).flatten(1)
        return F.normalize(audio, p=2, dim=1), F.normalize(face, p=2, dim=1)


def cosine_loss(audio: torch.Tensor, face: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Upstream's ``cosine_loss``: BCE of the cosine similarity against ``label`` (B, 1)."""
    similarity = F.cosine_similarity(audio, face).unsqueeze(1)
    # BCE is unsafe under autocast; the similarity is computed in float32
    return F.binary_cross_entropy(similarity.float().clamp(0, 1), label.float())


def lower_half_window(faces: torch.Tensor) -> torch.Tensor:
    """Generated or real windows ``(B, 3, T, H, W)`` → the expert's input ``(B, 3T, H/2, W)``
    (lower halves, frames stacked on channels frame-major, as ``get_sync_loss``)."""
    lower = faces[:, :, :, faces.size(3) // 2 :]
    return torch.cat(lower.unbind(2), dim=1)


class VisualQualityDisc(nn.Module):
    """``Wav2Lip_disc_qual``: unnormalised convs on the lower half, a real/fake probability."""

    def __init__(self, width: int = 1) -> None:
        super().__init__()
        s = lambda n: scaled(n, width)
        spec = (
            (s(32), 5, (1, 2), 2),
            (s(64), 5, 2, 2),
            (s(128), 5, 2, 2),
            (s(256), 3, 2, 1),
            (s(512), 3, 2, 1),
        )
        blocks: list[nn.Module] = [nn.Sequential(NoNormConv2d(3, s(32), 7, 1, 3))]
        cin = s(32)
        for index, (_, kernel, stride, padding) in enumerate(spec):
            cout = spec[index + 1][0] if index + 1 < len(spec) else s(512)
            blocks.append(
                nn.Sequential(
                    NoNormConv2d(cin, cout, kernel, stride, padding),
                    NoNormConv2d(cout, cout, kernel, 1, padding),
                )
            )
            cin = cout
        blocks.append(
            nn.Sequential(NoNormConv2d(cin, s(512), 3, 1, 0), NoNormConv2d(s(512), s(512), 1, 1, 0))
        )
        self.face_encoder_blocks = nn.ModuleList(blocks)
        self.binary_pred = nn.Sequential(nn.Conv2d(s(512), 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, face_sequences: torch.Tensor) -> torch.Tensor:
        """Windows ``(B, 3, T, H, W)`` → ``(T·B, 1)`` probabilities that each frame is real."""
        x = fold_time(face_sequences, 2)
        x = x[:, :, x.size(2) // 2 :]
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).view(len(x), -1)

    def perceptual_forward(self, fake: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial term: BCE of the fakes' scores against 1."""
        scores = self.forward(fake)
        return F.binary_cross_entropy(scores.float(), torch.ones_like(scores, dtype=torch.float))
