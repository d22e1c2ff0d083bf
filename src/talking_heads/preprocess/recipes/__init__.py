"""Preprocessing recipes (registered in ``RECIPES``) and the sharded runner :func:`run_shard`.

A recipe turns one manifest row (a video or an image) into the inputs a method family trains
and evaluates on, and returns that row's output manifest entry:

==========  ==================================================================================
recipe      what it writes per clip (parameters: :class:`FommParams`, :class:`Wav2LipParams`,
            :class:`HdtfParams`, :class:`EmotionParams`)
==========  ==================================================================================
``fomm``    video-preprocessing's VoxCeleb crop: the longest face tube that passes the length,
            size, IoU-with-the-first-box and border checks, enlarged by ``increase``, made
            square, anti-aliased to ``resolution``\\ ² (256), at the source frame rate; portraits
            likewise as PNG. Detection runs on frames downscaled to ``detect_size`` (640) px;
            ``detect_size: null`` detects on the full frame as ``crop_vox.py`` does
``wav2lip`` Wav2Lip's per-frame face boxes (``pads`` 0/10/0/0 px, 5-frame mean smoothing) at a
            constant 25 fps, each resized to 96², with the 16 kHz audio under the frames
``hdtf``    the HDTF annotation crops (applied at acquisition: 512² clips of the annotated
            intervals) as ``resolutions`` 512² and 256² copies, with audio
``emotion`` (MEAD, CREMA-D) the ``wav2lip`` crop at 25 fps, keeping the dataset's emotion and
            intensity labels as manifest columns
==========  ==================================================================================

One module each (:mod:`.fomm`, :mod:`.wav2lip`, :mod:`.emotion`, :mod:`.hdtf`); what they
share is in :mod:`.base` (typed parameters, :class:`Recipe`, :class:`FaceVideoRecipe`) and
the runner in :mod:`.shard`. Parameters come from config or ``--param key=value`` and are
typed by :func:`talking_heads.config.typed` (command-line text such as ``0,10,0,0`` or
``none`` is read as the field's type first): an unknown parameter or a wrong value is a
:class:`~talking_heads.config.ConfigError` naming the recipe and the parameter.

**Presets** (:mod:`.presets`): ``configs/recipe/<name>.yaml`` maps recipe names to parameter
overrides; ``talking-heads preprocess --preset NAME`` (``preset: NAME`` in a recipe's entry
of the Snakemake config) applies them under the explicit parameters. The ``inference``
preset is for animating one's own clip, not for building a training set: VoxCeleb's training
filters (faces >= 256 px, enlarged boxes leaving the frame rejected, IoU chunking, >= 64
frames) would throw such clips away. Under it the ``fomm`` recipe keeps faces near or over
the border (``border: pad``: the crop box shifted inside the frame where it fits, else
padded with edge pixels), keeps small faces and upscales them (``min_size: 0``), keeps short
clips (``min_frames: 1``; the face must still be on half of the frames, ``min_coverage:
0.5``, so a face passing by in a clip without a speaker is no face) and does not split tracks
by IoU with the first box (``iou_threshold: 0``); ``wav2lip`` and ``emotion`` keep short
clips and the longest face. Every such change is written in the row's ``notes``: "face box
shifted inside the frame (by +17, +0 px)", "padded 11 px at the top and 13 px at the bottom
of the frame (edge pixels)", "face 37 px (crop 44 px) upscaled to 64", "short clip: 20 frames
(video-preprocessing keeps >= 64)", "track not split by IoU with its first box (IoU 0.25
would cut it at frame 85)".

Every video recipe decodes through :func:`talking_heads.preprocess.decode.open_video` (decord,
checked against the container, with an ffmpeg fallback for variable frame rates and damaged
files), finds faces with :func:`talking_heads.preprocess.track.track_faces` (detection on a
stride of frames, linking, shot-change splits, interpolation), extracts 16 kHz mono audio
(from the row's ``audio_file`` when the manifest has one, e.g. a folder dataset's same-stem
``.wav``, else from the clip), computes the Wav2Lip log-mel and SyncNet MFCC features, and
locates 68 landmarks on the written crops. :func:`run_shard` writes a shard directory
atomically::

    out_dir/
      clips/<clip_id>.mp4        crops (H.264 yuv444p; crf 10 is visually lossless, 0 lossless)
      clips/<clip_id>.png        portrait crops (``fomm``)
      clips_<res>/<clip_id>.mp4  further resolutions (``hdtf``)
      audio/<clip_id>.wav        16 kHz mono PCM under the cropped frames
      features.npz               per clip: ``mel/<id>`` (80, M) Wav2Lip log-mel, ``mfcc/<id>``
                                 (13, N) SyncNet MFCC at 100 Hz, ``boxes/<id>`` (T, 4) face box
                                 per frame in source pixels, ``landmarks/<id>`` (T, 68, 2) in
                                 crop pixels (NaN where none was found)
      manifest.parquet           one row per input item: ok / skipped / failed, with a reason
      summary.json               counts by status and reason, throughput, preset, parameters

Output paths in the shard manifest are relative to ``out_dir``; the output columns (``path``,
``num_frames``, ...) describe the crop and stay empty for skipped or failed rows. Extra
columns: ``input_path`` (the dataset manifest's ``path``, relative to that manifest),
``input_sha256``, ``start_frame``/``end_frame`` (the cropped frames, on the decoded timeline:
the 25 fps one for ``wav2lip``), ``bbox`` (``left-top-right-bot`` crop box in source pixels, as
in vox-metadata.csv; the union of the per-frame boxes for ``wav2lip``; it may reach outside
the frame with ``border: pad``), ``audio_path``, ``mel_frames``, ``mfcc_frames``, ``faces``
(most faces seen in one sampled frame), ``notes`` (facts about an ok clip: "no audio stream",
"audio resampled from 8000 Hz", "variable frame rate ...", the changes listed above) and, for
``emotion``, the label columns.

Sharding: the manifest's ``video`` and ``image`` rows are sorted by ``clip_id`` and row ``i``
goes to shard ``i % num_shards``. The assignment is deterministic for a given manifest;
adding rows to the dataset reshuffles shards, so re-run every shard after a dataset change.
A shard whose ``summary.json`` records the same recipe, parameters and input manifest is
complete and is not recomputed.
"""

from __future__ import annotations

from .base import (
    RECIPES,
    SEVERAL_FACES,
    FaceParams,
    FaceVideoRecipe,
    ItemResult,
    ParamsBase,
    Recipe,
    UnusableInputError,
    from_text,
)
from .emotion import EmotionParams, EmotionRecipe
from .fomm import FommParams, FommRecipe, fomm_chunks
from .hdtf import HdtfParams, HdtfRecipe
from .presets import RecipePreset, load_preset, preset_names, resolve_params
from .shard import EXTRA_COLUMNS, PROCESSED_KINDS, load_features, run_shard, select_shard
from .wav2lip import Wav2LipParams, Wav2LipRecipe

__all__ = [
    "EXTRA_COLUMNS",
    "PROCESSED_KINDS",
    "RECIPES",
    "SEVERAL_FACES",
    "EmotionParams",
    "EmotionRecipe",
    "FaceParams",
    "FaceVideoRecipe",
    "FommParams",
    "FommRecipe",
    "HdtfParams",
    "HdtfRecipe",
    "ItemResult",
    "ParamsBase",
    "Recipe",
    "RecipePreset",
    "UnusableInputError",
    "Wav2LipParams",
    "Wav2LipRecipe",
    "fomm_chunks",
    "from_text",
    "load_features",
    "load_preset",
    "preset_names",
    "resolve_params",
    "run_shard",
    "select_shard",
]
