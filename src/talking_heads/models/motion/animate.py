"""Batched inference shared by the motion-transfer methods (FOMM, MRAA, TPSM, DaGAN, fv2v).

The official demo scripts (``demo.py`` ``make_animation``) compute the source's keypoints and
those of the first driving frame once, then run the keypoint detector and the generator on one
driving frame at a time, re-encoding the source inside the generator for every frame.
:class:`MotionAnimator` keeps that computation but encodes the source once and runs the
driving frames in batches. In eval mode every network is a per-sample computation, so the
batch changes nothing but speed; ``batch_size=1, reuse_source=False`` is the official loop
(the benchmark's baseline). The networks and frames are also kept in channels-last memory
format (``channels_last=True``), which oneDNN and cuDNN convolve faster than the default
layout; the values are the same up to float rounding. ``amp=True`` adds mixed precision:
fp16 autocast on CUDA, bf16 autocast on CPUs with native bf16 (AVX512-BF16 or AMX; elsewhere
bf16 is emulated and slower, so fp32 stays). Mixed precision changes the frames slightly
(the benchmark checks PSNR ≥ 45 dB against fp32), so the parity checks and the evaluation
protocols on CPU run in fp32.

A method subclasses :class:`MotionAnimator` with :meth:`~MotionAnimator.build` (its networks
from our checkpoint's hyper-parameters), :meth:`~MotionAnimator.prepare` (what is computed
once per source and reference driving frame) and :meth:`~MotionAnimator.generate` (a batch of
driving frames).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talking_heads.models.interface import GenerationInputs, Generator, InputError
from talking_heads.models.motion.blocks import convex_hull_area
from talking_heads.utils.frames import resize_frames

Keypoints = dict[str, torch.Tensor]


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bf16 convolutions natively (oneDNN: AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type on ``device``: fp16 on CUDA, bf16 on a bf16-capable CPU."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_bf16_supported():
        return torch.bfloat16
    return None


def state_of(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix`` (``"generator."``) with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def expand_batch(tree: Any, batch: int) -> Any:
    """Every tensor of a nested dict/list with leading dimension 1 expanded to ``batch``."""
    if isinstance(tree, torch.Tensor):
        return tree.expand(batch, *tree.shape[1:])
    if isinstance(tree, Mapping):
        return {key: expand_batch(value, batch) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(expand_batch(value, batch) for value in tree)
    return tree


def movement_scale(
    kp_source: torch.Tensor, kp_driving_initial: torch.Tensor, dims: int = 2
) -> float:
    """sqrt(hull measure of the source keypoints) / sqrt(that of the initial driving ones).

    ``kp_*`` are ``(1, K, dims+)`` keypoint values; the hull is taken over the first ``dims``
    coordinates: the area over (x, y) for the 2-D methods, the volume over (x, y, z) for
    face-vid2vid's 3-D keypoints. Upstream raises when a hull is degenerate (keypoints
    collapsed onto a line or plane, as in an untrained model); here the scale falls back to 1
    with a warning.
    """
    from scipy.spatial import QhullError

    def measure(kp: torch.Tensor) -> float:
        return convex_hull_area(kp[0, :, :dims].detach().double().cpu().numpy())

    try:
        source_area = measure(kp_source)
        driving_area = measure(kp_driving_initial)
    except QhullError:
        source_area = driving_area = 0.0
    if source_area <= 0 or driving_area <= 0:
        warnings.warn(
            "degenerate keypoint convex hull: movement scale set to 1", RuntimeWarning, stacklevel=2
        )
        return 1.0
    return math.sqrt(source_area) / math.sqrt(driving_area)


def normalized_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """68 face landmarks centred and divided by sqrt(hull area), as ``find_best_frame``."""
    centred = np.asarray(landmarks, dtype=np.float64)[:, :2]
    centred = centred - centred.mean(axis=0, keepdims=True)
    return centred / math.sqrt(convex_hull_area(centred))


def best_frame_index(
    source_landmarks: np.ndarray, driving_landmarks: list[np.ndarray | None]
) -> int:
    """The driving frame whose normalised landmarks are nearest the source's (squared L2).

    Frames without a face (``None``) are skipped; with no face anywhere, frame 0.
    """
    reference = normalized_landmarks(source_landmarks)
    best, best_distance = 0, math.inf
    for index, landmarks in enumerate(driving_landmarks):
        if landmarks is None:
            continue
        distance = float(((reference - normalized_landmarks(landmarks)) ** 2).sum())
        if distance < best_distance:
            best, best_distance = index, distance
    return best


class MotionAnimator(Generator, ABC):
    """A method's inference networks in eval mode, batched over driving frames (the
    :class:`~talking_heads.models.interface.Generator` of the motion-transfer family)."""

    #: the networks inference needs, as named in our Lightning checkpoints' ``state_dict``
    NETWORKS: ClassVar[tuple[str, ...]]
    #: the experiment whose model config an official checkpoint is built with
    #: (:meth:`from_official`; the hyper-parameters live only in ``configs/model/*.yaml``)
    OFFICIAL_EXPERIMENT: ClassVar[str | None] = None
    #: networks an official checkpoint may lack (they then stay freshly initialised)
    OFFICIAL_OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        networks: Mapping[str, nn.Module],
        resolution: int = 256,
        channels_last: bool = True,
    ) -> None:
        missing = set(self.NETWORKS) - set(networks)
        if missing:
            raise ValueError(f"{type(self).__name__} needs networks {sorted(missing)}")
        self.networks = {name: networks[name].eval() for name in self.NETWORKS}
        self.resolution = int(resolution)
        self.channels_last = bool(channels_last)
        self.to(self.device)

    def __getattr__(self, name: str) -> nn.Module:
        networks = self.__dict__.get("networks", {})
        if name in networks:
            return networks[name]
        raise AttributeError(name)

    @classmethod
    @abstractmethod
    def build(cls, hyper_parameters: Mapping[str, Any]) -> dict[str, nn.Module]:
        """The inference networks, randomly initialised, from a checkpoint's hyper-parameters."""

    @classmethod
    def from_checkpoint(cls, path: Path | str, map_location: str = "cpu") -> MotionAnimator:
        """Load one of our Lightning checkpoints (trained or imported; ``weights_only=True``)."""
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        hyper_parameters = checkpoint["hyper_parameters"]
        networks = cls.build(hyper_parameters)
        state = checkpoint["state_dict"]
        for name, network in networks.items():
            network.load_state_dict(state_of(state, name + "."), strict=True)
        animator = cls(networks, resolution=int(hyper_parameters.get("resolution", 256)))
        return animator.to("cpu" if map_location == "auto" else map_location)

    @classmethod
    def from_official(
        cls,
        path: Path | str,
        model_params: dict | None = None,
        map_location: str = "cpu",
        resolution: int | None = None,
    ) -> MotionAnimator:
        """Load an official checkpoint of the method (its upstream ``demo.py`` file).

        Its per-network sub-dicts load strictly into networks built from ``model_params``
        (default: those of :attr:`OFFICIAL_EXPERIMENT`'s model config, whose ``resolution``
        is also the default); a network of :attr:`OFFICIAL_OPTIONAL` that the file lacks keeps
        its fresh initialisation, as upstream. ``weights_only=True`` reads these files
        (tensors, optimiser state, epoch numbers).
        """
        if cls.OFFICIAL_EXPERIMENT is None:
            raise TypeError(f"{cls.__name__} does not load official checkpoints directly")
        if model_params is None or resolution is None:
            from talking_heads.config import experiment_model_config

            official = experiment_model_config(cls.OFFICIAL_EXPERIMENT)
            model_params = model_params or official["model_params"]
            resolution = resolution or int(official.get("resolution", 256))
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        networks = cls.build({"model_params": model_params})
        for name, network in networks.items():
            if name in checkpoint or name not in cls.OFFICIAL_OPTIONAL:
                network.load_state_dict(checkpoint[name], strict=True)
        device = "cpu" if map_location == "auto" else map_location
        return cls(networks, resolution=resolution).to(device)

    @property
    def device(self) -> torch.device:
        """Where the networks live."""
        return next(next(iter(self.networks.values())).parameters()).device

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of 4-D weights and frames."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def to(self, device: torch.device | str) -> MotionAnimator:
        """Move every network to ``device``, 4-D weights in :attr:`memory_format` (5-D weights
        of 3-D convolutions keep the default layout: ``Module.to`` rejects channels-last for
        them)."""
        for network in self.networks.values():
            network.to(device)
            with torch.no_grad():
                for tensor in [*network.parameters(), *network.buffers()]:
                    if tensor.dim() == 4:
                        tensor.data = tensor.data.contiguous(memory_format=self.memory_format)
        return self

    def frames_on_device(self, frames: torch.Tensor) -> torch.Tensor:
        """``(n, 3, H, W)`` frames as float32 on the networks' device, in their layout."""
        frames = frames.to(self.device, torch.float32)
        return frames.contiguous(memory_format=self.memory_format)

    @abstractmethod
    def prepare(self, source: torch.Tensor, driving_initial: torch.Tensor) -> dict[str, Any]:
        """What is computed once: from the source ``(1, 3, H, W)`` and the reference driving
        frame ``(1, 3, H, W)`` (keypoints, source features, depth ...)."""

    @abstractmethod
    def generate(
        self,
        prepared: Mapping[str, Any],
        frames: torch.Tensor,
        *,
        relative: bool,
        adapt_scale: bool,
        reuse_source: bool = True,
    ) -> torch.Tensor:
        """The generated frames ``(n, 3, H, W)`` for driving ``frames`` ``(n, 3, H, W)``.

        ``reuse_source=False`` recomputes the per-source work the official generator repeats
        for every frame (the source encoder), for the per-frame baseline.
        """

    def animate(
        self,
        source: torch.Tensor,
        driving: torch.Tensor,
        *,
        relative: bool = True,
        adapt_scale: bool = True,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
        reference_frame: int = 0,
        reuse_source: bool = True,
    ) -> torch.Tensor:
        """Animate ``source`` ``(3, H, W)`` with ``driving`` ``(T, 3, H, W)``, both in [0, 1].

        ``relative`` transfers the motion relative to the reference driving frame (frame 0,
        or ``reference_frame``: the demo scripts' best-frame alignment, which animates forward
        and backward from that frame, i.e. uses it as the reference for every frame);
        ``adapt_scale`` scales it by the keypoint hull areas. ``device`` moves the networks
        there first (``None``: where they are); ``amp`` runs mixed precision where the device
        has it (:func:`autocast_dtype`). Returns
        ``(T, 3, H, W)`` float32 on the CPU.
        """
        if device is not None and torch.device(device) != self.device:
            self.to(device)
        device = self.device
        amp_dtype = autocast_dtype(device) if amp else None
        outputs = []
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None),
        ):
            prepared = self.prepare(
                self.frames_on_device(source.unsqueeze(0)),
                self.frames_on_device(driving[reference_frame : reference_frame + 1]),
            )
            for start in range(0, driving.shape[0], batch_size):
                frames = self.frames_on_device(driving[start : start + batch_size])
                out = self.generate(
                    prepared,
                    frames,
                    relative=relative,
                    adapt_scale=adapt_scale and relative,
                    reuse_source=reuse_source,
                )
                outputs.append(out.float().cpu())
        return torch.cat(outputs)

    def synthesize(
        self,
        inputs: GenerationInputs,
        options: Mapping[str, Any],
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """:meth:`animate` from the family's inputs (``source``, ``driving``, resized to
        :attr:`resolution`) and options (``relative``, ``adapt_scale``, ``best_frame``,
        ``find_best_frame`` with ``landmarks``)."""
        if inputs.source is None or inputs.driving is None:
            raise InputError("motion transfer needs a source image and a driving video")
        source = resize_frames(inputs.source[None], self.resolution)[0]
        driving = resize_frames(inputs.driving, self.resolution)
        reference = int(options.get("best_frame", -1))
        if reference < 0 and options.get("find_best_frame"):
            from talking_heads.models.motion.best_frame import find_best_frame

            reference = find_best_frame(source, driving, options.get("landmarks", "auto"))
        reference = max(reference, 0)
        if reference >= driving.shape[0]:
            raise InputError(f"best frame {reference} outside the {driving.shape[0]} frames")
        self.reference_frame = reference
        return self.animate(
            source,
            driving,
            relative=bool(options.get("relative", True)),
            adapt_scale=bool(options.get("adapt_scale", True)),
            batch_size=batch_size,
            device=device,
            amp=amp,
            reference_frame=reference,
        )

    def reconstruct_clip(
        self,
        inputs: GenerationInputs,
        options: Mapping[str, Any],
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """The reconstruction protocol on the family's inputs: :meth:`reconstruct` of the
        driving clip (its frame 0 is the source)."""
        if inputs.driving is None:
            raise InputError("reconstruction needs the clip as the driving video")
        video = resize_frames(inputs.driving, self.resolution)
        return self.reconstruct(video, batch_size=batch_size, device=device, amp=amp)

    def reconstruct(
        self,
        video: torch.Tensor,
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """The reconstruction protocol: frame 0 is the source, absolute motion."""
        return self.animate(
            video[0],
            video,
            relative=False,
            adapt_scale=False,
            batch_size=batch_size,
            device=device,
            amp=amp,
        )
