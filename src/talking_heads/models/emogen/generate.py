"""EmoGen at inference (upstream ``inference.py``; see
:mod:`talking_heads.models.lipsync.inference`): the whole face of each crop is re-synthesised
from the reference frame, the audio and the requested emotion (``--emotion``: angry,
disgust, fear, happy, neutral, sad, or CREMA-D's codes ANG … SAD)."""

from __future__ import annotations

from talking_heads.models.lipsync.generate import MelLipSyncGenerator


class EmoGenGenerator(MelLipSyncGenerator):
    """EmoGen: the whole target face masked, a one-hot emotion at the bottleneck."""

    mask_whole_face = True
