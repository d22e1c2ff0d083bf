"""Wav2Lip training: the expert, then the generator (``wav2lip_train.py``), or with
``train.disc_wt`` 0.07 and ``syncnet_wt`` 0.03 the GAN variant (``hq_wav2lip_train.py``);
see :mod:`talking_heads.models.lipsync.training`."""

from __future__ import annotations

from talking_heads.models.lipsync.training import LipSyncLightning


class Wav2LipLightning(LipSyncLightning):
    """Wav2Lip: lower-half masking, no emotion."""

    mask_whole_face = False
