"""Wav2Lip at inference (upstream ``inference.py``; see
:mod:`talking_heads.models.lipsync.inference`)."""

from __future__ import annotations

from talking_heads.models.lipsync.generate import MelLipSyncGenerator


class Wav2LipGenerator(MelLipSyncGenerator):
    """Wav2Lip: the lower half of each face crop is re-synthesised."""

    mask_whole_face = False
