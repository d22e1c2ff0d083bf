"""The one method interface: what a method consumes, what it produces, and its options.

Every registered method (:data:`talking_heads.models.METHODS`) declares its **inputs** by kind
(:data:`INPUT_KINDS`: a source portrait, a driving video, a face video, speech, an emotion
label, 3DMM coefficients, landmarks, head pose) and its **options** (name, default, choices).
Most declarations come from the method's **family** (:data:`FAMILIES`: ``motion-transfer``,
``lip-sync``, ``audio-driven``, ``3dmm-driven``, ``landmark-driven``), which also names the
survey table its methods are reported in.

Everything downstream follows the declaration, never a method's name: ``talking-heads
generate`` checks the inputs it is given against it (:func:`check_inputs`), the evaluation
protocols hand a method the inputs it declares, the workflow plans one job per (model,
protocol) whose families match, and the report puts each row in its method's table.

A method's inference object is a :class:`Generator`: built from one of our checkpoints
(:meth:`Generator.from_checkpoint`), it turns :class:`GenerationInputs` into frames
(:meth:`Generator.synthesize`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from talking_heads.errors import UserError
from talking_heads.registry import Registry

#: every input kind a method can declare, with what a user gives for it
INPUT_KINDS: dict[str, str] = {
    "source": "source portrait: an image (or a video, whose first frame is used)",
    "driving": "driving video whose motion is transferred (a video or a folder of frames)",
    "face": "face video (or a still image) whose mouth is re-synthesised",
    "audio": "speech: a WAV file or any file with an audio track",
    "emotion": "emotion label (e.g. happy, sad, angry, neutral)",
    "coefficients": "3DMM coefficient sequence: .npy of shape (frames, 257)",
    "landmarks": "68-point landmark sequence: .npy of shape (frames, 68, 2)",
    "pose": "head pose sequence: .npy of shape (frames, 3), yaw/pitch/roll in degrees",
}

#: where a preprocessed shard holds each input kind of a clip (``{}``: the clip id)
SHARD_INPUT_FILES: dict[str, str] = {
    "source": "clips/{}.png",
    "driving": "clips/{}.mp4",
    "face": "clips/{}.mp4",
    "audio": "audio/{}.wav",
}


class InputError(UserError):
    """The inputs given to a method do not match what it declares."""


@dataclass(frozen=True)
class MethodInput:
    """One declared input: its kind and whether the method needs it."""

    kind: str
    required: bool = True

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {self.kind!r}; known: {', '.join(INPUT_KINDS)}")


@dataclass(frozen=True)
class MethodOption:
    """One option of a method's generation (its type is that of ``default``)."""

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    def coerce(self, value: Any) -> Any:
        """``value`` as this option's type, or an :class:`InputError` naming the option."""
        if value is None:
            return self.default
        kind = type(self.default)
        try:
            if kind is bool and not isinstance(value, bool):
                text = str(value).lower()
                if text not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                value = text in {"true", "1", "yes"}
            elif self.default is not None and kind is not bool:
                value = kind(value)
        except (TypeError, ValueError):
            raise InputError(
                f"option {self.name}: expected a {kind.__name__}, got {value!r}"
            ) from None
        if self.choices is not None and value not in self.choices:
            raise InputError(
                f"option {self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}"
            )
        return value


@dataclass(frozen=True)
class Family:
    """A family of methods: the inputs and options they share and the table they fill."""

    name: str
    title: str
    table: str
    inputs: tuple[MethodInput, ...]
    options: tuple[MethodOption, ...] = ()
    produces: str = "video"


MOTION_OPTIONS: tuple[MethodOption, ...] = (
    MethodOption("relative", True, "relative motion (else absolute keypoints)"),
    MethodOption("adapt_scale", True, "scale relative motion by the keypoint hull areas"),
    MethodOption("best_frame", -1, "reference driving frame of relative motion (-1: frame 0)"),
    MethodOption(
        "find_best_frame", False, "reference: the driving frame whose landmarks match the source"
    ),
    MethodOption("landmarks", "auto", "landmarks for find_best_frame", ("auto", "fan", "dlib")),
)

#: the options every lip-sync method declares (``talking-heads lipsync`` flags; upstream
#: ``inference.py``'s arguments)
LIPSYNC_OPTIONS: tuple[MethodOption, ...] = (
    MethodOption("pads", "0,10,0,0", "face box padding in px: top,bottom,left,right"),
    MethodOption("box", "-1,-1,-1,-1", "fixed face box top,bottom,left,right (-1: detect)"),
    MethodOption("nosmooth", False, "no 5-frame smoothing of the face boxes"),
    MethodOption("resize_factor", 1, "downscale the face video by this factor first"),
    MethodOption("static", False, "use only the first frame of the face video"),
    MethodOption("detector", "auto", "face detector", ("auto", "sfd", "dlib_hog", "dlib_cnn")),
    MethodOption("detect_batch", 16, "frames per face-detection batch"),
    MethodOption(
        "detect_every",
        1,
        "detect faces on every N-th frame, boxes interpolated between (1: every frame)",
    ),
    MethodOption(
        "audio_tail",
        True,
        "a last audio window aligned to the end (inference.py); false: whole windows only, "
        "as Wav2Lip's evaluation script",
    ),
)


FAMILIES: Registry[Family] = Registry("family")
FAMILIES.add(
    "motion-transfer",
    Family(
        "motion-transfer",
        "video-driven motion transfer",
        "table2",
        (MethodInput("source"), MethodInput("driving")),
        MOTION_OPTIONS,
    ),
)
FAMILIES.add(
    "lip-sync",
    Family(
        "lip-sync",
        "lip-sync (face video + speech)",
        "table3",
        (MethodInput("face"), MethodInput("audio"), MethodInput("emotion", required=False)),
        LIPSYNC_OPTIONS,
    ),
)
FAMILIES.add(
    "audio-driven",
    Family(
        "audio-driven",
        "audio-driven portrait (image + speech)",
        "table3",
        (MethodInput("source"), MethodInput("audio")),
    ),
)
FAMILIES.add(
    "3dmm-driven",
    Family(
        "3dmm-driven",
        "3DMM-driven (image + coefficients)",
        "table2",
        (MethodInput("source"), MethodInput("coefficients")),
    ),
)
FAMILIES.add(
    "landmark-driven",
    Family(
        "landmark-driven",
        "landmark-driven (image + landmarks)",
        "table2",
        (MethodInput("source"), MethodInput("landmarks")),
    ),
)


@dataclass
class AudioClip:
    """Mono speech samples in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int
    path: Path | None = None


@dataclass
class GenerationInputs:
    """What a generator is given: frames ``(T, 3, H, W)`` / images ``(3, H, W)`` in [0, 1]."""

    source: torch.Tensor | None = None
    driving: torch.Tensor | None = None
    face: torch.Tensor | None = None
    audio: AudioClip | None = None
    emotion: str | None = None
    coefficients: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    pose: np.ndarray | None = None
    fps: float = 25.0
    #: the face video's file, when it came from one (a shard crop needs no detection)
    face_path: Path | None = None

    def given(self) -> list[str]:
        """The input kinds that are set."""
        return [kind for kind in INPUT_KINDS if getattr(self, kind) is not None]


class Generator(ABC):
    """A method's inference networks: checkpoint in, frames out."""

    #: side of the square frames the networks see
    resolution: int
    #: family-independent marker that an object implements this interface
    IS_GENERATOR: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def from_checkpoint(cls, path: Path | str, map_location: str = "cpu") -> Generator:
        """Load one of our checkpoints (trained or imported)."""

    @abstractmethod
    def synthesize(
        self,
        inputs: GenerationInputs,
        options: Mapping[str, Any],
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """The generated frames ``(T, 3, resolution, resolution)`` float32 on the CPU."""

    def reconstruct_clip(
        self,
        inputs: GenerationInputs,
        options: Mapping[str, Any],
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """The reconstruction protocol: a clip re-generated from its own signals (the
        family's inputs taken from the clip). By default :meth:`synthesize`."""
        return self.synthesize(inputs, options, batch_size=batch_size, device=device, amp=amp)


@dataclass(frozen=True)
class MethodDeclaration:
    """What a method consumes and what it offers (resolved from its family and own additions)."""

    family: Family
    inputs: tuple[MethodInput, ...]
    options: tuple[MethodOption, ...] = field(default=())

    @property
    def input_kinds(self) -> list[str]:
        return [i.kind for i in self.inputs]

    @property
    def required_kinds(self) -> list[str]:
        return [i.kind for i in self.inputs if i.required]

    def option(self, name: str) -> MethodOption:
        for option in self.options:
            if option.name == name:
                return option
        known = ", ".join(o.name for o in self.options) or "none"
        raise InputError(f"unknown option {name!r}; options: {known}")

    def resolve_options(self, given: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
        """Every option's value: ``given`` coerced, defaults for the rest. ``strict``: an
        option the method lacks is an error (else ignored, as a protocol's options for
        another family are)."""
        names = {o.name for o in self.options}
        if strict:
            for name in given:
                if name not in names:
                    self.option(name)
        return {o.name: o.coerce(given.get(o.name)) for o in self.options}


def check_inputs(method: str, declaration: MethodDeclaration, given: Sequence[str]) -> None:
    """Raise an :class:`InputError` when ``given`` input kinds lack a required one of
    ``declaration`` or hold one it does not take; the message names both."""
    declared = declaration.input_kinds
    listing = ", ".join(
        f"--{k}" + ("" if k in declaration.required_kinds else " (optional)") for k in declared
    )
    unexpected = [k for k in given if k not in declared]
    if unexpected:
        raise InputError(
            f"{method} does not take {', '.join('--' + k for k in unexpected)}; "
            f"its inputs: {listing}"
        )
    missing = [k for k in declaration.required_kinds if k not in given]
    if missing:
        raise InputError(
            f"{method} needs {', '.join('--' + k for k in missing)}; its inputs: {listing}"
        )
