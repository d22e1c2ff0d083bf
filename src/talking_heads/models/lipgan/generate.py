"""LipGAN at inference (upstream ``batch_inference.py``) inside the shared lip-sync pipeline
(:mod:`talking_heads.models.lipsync.inference`).

As upstream: each 96² BGR face crop (OpenCV order, ``image[y1:y2, x1:x2, ::-1]`` of the RGB
detector input) is scaled by 1/255 and stacked with a copy whose rows ``48:`` (the lower half)
are zeroed, the unmasked face first; the prediction is scaled by 255 and pasted back. The
audio windows are centred on their frames (:mod:`talking_heads.models.lipgan.audio`):
80×27 mel (``fully_pythonic``) or 12×35 MATLAB-style MFCC (master), as the checkpoint's
``audio`` says.

Deviations: upstream drops the first frames (their MFCC window would start before the audio)
and needs a ``.mat`` file from MATLAB; here each frame gets a window (clamped at the ends)
computed from the waveform.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from talking_heads.models.interface import AudioClip, InputError
from talking_heads.models.lipgan.audio import features, frame_windows, num_frames
from talking_heads.models.lipgan.module import masked_input
from talking_heads.models.lipgan.networks import LipGANGeneratorNet
from talking_heads.models.lipsync.inference import LipSyncGenerator, network_state
from talking_heads.preprocess.audio import SAMPLE_RATE


class LipGANGenerator(LipSyncGenerator):
    """A :class:`LipGANGeneratorNet` inside the lip-sync pipeline."""

    NETWORKS: ClassVar[tuple[str, ...]] = ("generator",)

    def __init__(self, generator: LipGANGeneratorNet) -> None:
        super().__init__()
        self.generator = generator.eval()

    @property
    def network(self) -> torch.nn.Module:
        return self.generator

    @classmethod
    def from_checkpoint(cls, path: Path | str, map_location: str = "cpu") -> LipGANGenerator:
        from talking_heads.models.checkpoints import read_checkpoint

        checkpoint = read_checkpoint(path)
        hp = checkpoint.get("hyper_parameters") or {}
        generator = LipGANGeneratorNet(
            int(hp.get("width", 1)),
            str(hp.get("variant", "residual")),
            str(hp.get("audio", "mel80x27")),
        )
        generator.load_state_dict(network_state(checkpoint, "generator"), strict=True)
        return cls(generator.to(map_location))

    def audio_windows(self, audio: AudioClip, fps: float) -> np.ndarray:
        if audio.sample_rate != SAMPLE_RATE:
            raise InputError(f"audio must be {SAMPLE_RATE} Hz mono, got {audio.sample_rate} Hz")
        count = num_frames(len(audio.samples), audio.sample_rate, fps)
        if count == 0:
            return np.zeros((0, 1, 1), dtype=np.float32)
        spectrum = features(audio.samples, audio.sample_rate, self.generator.audio)
        if spectrum.shape[1] == 0 or not np.isfinite(spectrum).all():
            raise InputError("the audio gives no finite LipGAN features (too short, or NaN)")
        return frame_windows(spectrum, count, fps, self.generator.audio)

    def predict(
        self, faces: torch.Tensor, windows: torch.Tensor, emotion: str | None
    ) -> torch.Tensor:
        return self.generator(masked_input(faces, faces), windows[:, None])
