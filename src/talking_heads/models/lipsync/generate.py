"""The Wav2Lip-style generator at inference: 80×16 mel chunks and a masked + reference face
(Wav2Lip: the lower half masked; EmoGen: the whole face, with an emotion)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from talking_heads.models.interface import AudioClip, InputError
from talking_heads.models.lipsync.inference import LipSyncGenerator, network_state
from talking_heads.models.lipsync.networks import Wav2LipUNet
from talking_heads.preprocess.audio import SAMPLE_RATE, mel_windows, melspectrogram

MEL_STEP = 16
#: EmoGen's classes in its one-hot order, and the labels users give for them
EMOTION_CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
EMOTION_LABELS = {
    "angry": "ANG",
    "anger": "ANG",
    "disgust": "DIS",
    "disgusted": "DIS",
    "fear": "FEA",
    "fearful": "FEA",
    "happy": "HAP",
    "neutral": "NEU",
    "sad": "SAD",
}


def inference_chunk_count(columns: int, fps: float) -> int:
    """How many 16-column chunks upstream's ``inference.py`` cuts: chunk ``i`` starts at
    ``int(i·80/fps)``; the first one that would run past the end is the last 16 columns."""
    step = 80.0 / fps
    i = 0
    while int(i * step) + MEL_STEP <= columns:
        i += 1
    return i + 1


def mel_chunks(audio: AudioClip, fps: float) -> np.ndarray:
    """Upstream's mel chunks ``(N, 80, 16)`` of 16 kHz speech, one per output frame."""
    if audio.sample_rate != SAMPLE_RATE:
        raise InputError(f"audio must be {SAMPLE_RATE} Hz mono, got {audio.sample_rate} Hz")
    mel = melspectrogram(audio.samples, audio.sample_rate)
    if np.isnan(mel).any():
        raise InputError("the mel spectrogram holds NaN (digital silence from a TTS voice?)")
    count = inference_chunk_count(mel.shape[1], fps)
    return mel_windows(mel, count, fps, window=MEL_STEP, alignment="inference")


def emotion_one_hot(label: str | None) -> torch.Tensor:
    """EmoGen's one-hot for ``label`` (``happy`` or ``HAP``); an unknown label is an error."""
    if label is None:
        raise InputError("EmoGen needs --emotion (one of " + ", ".join(EMOTION_LABELS) + ")")
    code = EMOTION_LABELS.get(label.lower(), label.upper())
    if code not in EMOTION_CODES:
        raise InputError(
            f"unknown emotion {label!r}; choose from {', '.join(sorted(EMOTION_LABELS))}"
        )
    return torch.nn.functional.one_hot(
        torch.tensor(EMOTION_CODES.index(code)), len(EMOTION_CODES)
    ).float()


class MelLipSyncGenerator(LipSyncGenerator):
    """A :class:`Wav2LipUNet` inside the lip-sync pipeline (built from our checkpoint)."""

    NETWORKS: ClassVar[tuple[str, ...]] = ("generator",)
    #: whether the whole target face is masked (EmoGen) or only its lower half (Wav2Lip)
    mask_whole_face: ClassVar[bool] = False

    def __init__(self, generator: Wav2LipUNet) -> None:
        super().__init__()
        self.generator = generator.eval()

    @property
    def network(self) -> torch.nn.Module:
        return self.generator

    @classmethod
    def from_checkpoint(cls, path: Path | str, map_location: str = "cpu") -> MelLipSyncGenerator:
        from talking_heads.models.checkpoints import read_checkpoint

        checkpoint = read_checkpoint(path)
        hp = checkpoint.get("hyper_parameters") or {}
        generator = Wav2LipUNet(int(hp.get("width", 1)), int(hp.get("emotions", 0)))
        generator.load_state_dict(network_state(checkpoint, "generator"), strict=True)
        return cls(generator.to(map_location))

    def audio_windows(self, audio: AudioClip, fps: float) -> np.ndarray:
        return mel_chunks(audio, fps)

    def predict(
        self, faces: torch.Tensor, windows: torch.Tensor, emotion: str | None
    ) -> torch.Tensor:
        masked = faces.clone()
        masked[:, :, 0 if self.mask_whole_face else faces.size(2) // 2 :] = 0
        one_hot = None
        if self.generator.emotions:
            one_hot = emotion_one_hot(emotion).to(faces.device).expand(len(faces), -1)
        return self.generator(windows[:, None], torch.cat([masked, faces], dim=1), one_hot)
