"""Preprocessing: face detection, FOMM-style crops, audio features and sharded recipes.

- :mod:`.detect`: the :class:`~.detect.FaceDetector` interface and the ``DETECTORS`` registry.
- :mod:`.landmarks`: 68-point landmarks behind :class:`~.landmarks.LandmarkDetector`.
- :mod:`.crop`: face tracks and video-preprocessing's square, enlarged tube crops.
- :mod:`.audio`: 16 kHz mono extraction and the Wav2Lip log-mel spectrogram.
- :mod:`.recipes`: the ``RECIPES`` registry and :func:`~.recipes.run_shard`.
"""
