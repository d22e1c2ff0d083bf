"""Pretrained weights: resolved from the weights directory, checksum-verified, safely loaded.

Every pretrained file lives in ``$TALKING_HEADS_WEIGHTS`` (default ``data/weights/``) under its
upstream file name. Nothing is downloaded at run time: a missing file raises
:class:`MissingWeightsError` naming the file, its URL and where to put it. Checksums are
verified before loading and files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talking_heads.manifest import sha256_file
from talking_heads.registry import Registry

WEIGHTS_ENV = "TALKING_HEADS_WEIGHTS"
ALLOW_UNVERIFIED_ENV = "TALKING_HEADS_ALLOW_UNVERIFIED_WEIGHTS"
DEFAULT_WEIGHTS_DIR = Path("data/weights")


class MissingWeightsError(FileNotFoundError):
    """A pretrained file is not in the weights directory."""


class ChecksumMismatchError(ValueError):
    """A pretrained file's sha256 does not match the registered value."""


@dataclass(frozen=True)
class WeightsSpec:
    """One pretrained file: upstream name, URL, and its sha256 (or the published prefix).

    ``sha256`` may be a full 64-hex digest or a prefix where upstream only publishes one
    (torchvision embeds the first 8 hex digits of the sha256 in its file names).
    """

    name: str
    filename: str
    url: str
    sha256: str
    used_by: str
    size_bytes: int | None = None


WEIGHTS: Registry[WeightsSpec] = Registry("weights")
WEIGHTS.add(
    "vgg19",
    WeightsSpec(
        name="vgg19",
        filename="vgg19-dcbb9e9d.pth",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        sha256="dcbb9e9d",
        used_by="FOMM-family perceptual loss (torchvision ImageNet VGG19)",
        size_bytes=574673361,
    ),
)
# face-alignment's files follow torch.hub's naming (the hex after the last "-" is the start of
# the file's sha256), though face_alignment 1.5.0 downloads them without checking it. The full
# digests below are the values pinned independently by several public projects and both start
# with that prefix; they were not recomputed here (no network access when they were added).
WEIGHTS.add(
    "s3fd",
    WeightsSpec(
        name="s3fd",
        filename="s3fd-619a316812.pth",
        url="https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
        sha256="619a31681264d3f7f7fc7a16a42cbbe8b23f31a256f75a366e5a1bcd59b33543",
        used_by="S3FD face detector (detector: sfd; face_alignment's state dict)",
        size_bytes=89843225,
    ),
)
WEIGHTS.add(
    "fan68",
    WeightsSpec(
        name="fan68",
        filename="2DFAN4-11f355bf06.pth.tar",
        url="https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
        sha256="11f355bf0693120222f5955ce3f9dc8fb5763ebb30a47d7906e509490d32e4aa",
        used_by="2D-FAN-4 68-point landmarks (landmarks: fan68; face_alignment 1.5's state dict)",
    ),
)
# deep-head-pose publishes no checksum of its Hopenet snapshot and none was computed here (no
# network access): the sha256 is left empty, and face-vid2vid's loader
# (talking_heads.nets.hopenet.load_hopenet) then requires the unverified opt-in.
WEIGHTS.add(
    "hopenet",
    WeightsSpec(
        name="hopenet",
        filename="hopenet_robust_alpha1.pkl",
        url="https://drive.google.com/open?id=1m25PrSE7g9D2q2XJVMR6IA7RaCvWSzCR",
        sha256="",
        used_by="face-vid2vid headpose loss (deep-head-pose Hopenet, 300W-LP, alpha 1)",
    ),
)
# DaGAN's face-depth models (monodepth2 encoder.pth / depth.pth, upstream's folder names) are
# published on the authors' OneDrive without checksums, and none was computed here (no network
# access): the sha256 is left empty, so loading them (talking_heads.models.dagan.depth
# .load_depth_weights) requires the unverified opt-in.
for _name, _folder, _url, _used_by in (
    (
        "dagan_depth18",
        "weights_19",
        "https://hkustconnect-my.sharepoint.com/:f:/g/personal/fhongac_connect_ust_hk/"
        "EjfeXuzwo3JMn7s0oOPN_q0B81P5Wgu_kbYJAh7uSAKS2w?e=KaQcPk",
        "DaGAN face-depth ResNet-18 (demo.py, the released DaGAN checkpoints)",
    ),
    (
        "dagan_depth50",
        "depth_face_model_Voxceleb2_10w",
        "https://hkustconnect-my.sharepoint.com/:f:/g/personal/fhongac_connect_ust_hk/"
        "EkxzfH7zbGJNr-WVmPU6fcABWAMq_WJoExAl4SttKK6hBQ?e=fbtGlX",
        "DaGAN face-depth ResNet-50 trained on VoxCeleb2 (upstream modules/model.py)",
    ),
):
    for _part, _file in (("encoder", "encoder.pth"), ("decoder", "depth.pth")):
        WEIGHTS.add(
            f"{_name}_{_part}",
            WeightsSpec(
                name=f"{_name}_{_part}",
                filename=f"{_folder}/{_file}",
                url=_url,
                sha256="",
                used_by=f"{_used_by}: depth {_part}",
            ),
        )
# insightface's arcface_torch model zoo (OneDrive/Baidu folders, one ``backbone.pth`` per model
# folder, kept under that folder name here) and OpenFacePytorch's ``openface.pth`` publish no
# checksums and none was computed here (no network access): the sha256 is left empty, so loading
# them (talking_heads.metrics.identity) requires the unverified opt-in.
_ARCFACE_ZOO = "https://1drv.ms/u/s!AswpsDO2toNKq0lWY69vN58GR6mw?e=p9Ov5d"
for _name, _folder, _used_by in (
    ("arcface_r100", "ms1mv3_arcface_r100_fp16", "CSIM (ArcFace iresnet100, MS1MV3; default)"),
    ("arcface_r50", "ms1mv3_arcface_r50_fp16", "CSIM (ArcFace iresnet50, MS1MV3)"),
    (
        "arcface_glint360k_r100",
        "glint360k_cosface_r100_fp16_0.1",
        "CSIM (CosFace iresnet100, Glint360K; antelopev2's glintr100)",
    ),
):
    WEIGHTS.add(
        _name,
        WeightsSpec(
            name=_name,
            filename=f"{_folder}/backbone.pth",
            url=_ARCFACE_ZOO,
            sha256="",
            used_by=_used_by,
        ),
    )
WEIGHTS.add(
    "openface",
    WeightsSpec(
        name="openface",
        filename="openface.pth",
        url="https://github.com/thnkim/OpenFacePytorch/raw/master/openface.pth",
        sha256="",
        used_by="AED (OpenFace nn4.small2.v1, thnkim/OpenFacePytorch, as pose-evaluation)",
    ),
)


WEIGHTS.add(
    "alexnet",
    WeightsSpec(
        name="alexnet",
        filename="alexnet-owt-7be5be79.pth",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        sha256="7be5be79",
        used_by="LPIPS backbone (torchvision ImageNet AlexNet, what lpips 0.1 loads)",
        size_bytes=244408911,
    ),
)
WEIGHTS.add(
    "pt_inception",
    WeightsSpec(
        name="pt_inception",
        filename="pt_inception-2015-12-05-6726825d.pth",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        sha256="6726825d",
        used_by="FID / IS (pytorch-fid's port of TF inception-2015-12-05)",
    ),
)


WEIGHTS.add(
    "syncnet",
    WeightsSpec(
        name="syncnet",
        filename="syncnet_v2.model",
        url="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
        sha256="961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442",
        used_by="LSE-D / LSE-C (joonson/syncnet_python SyncNet)",
        size_bytes=54573114,
    ),
)


def weights_dir() -> Path:
    """The weights directory: ``$TALKING_HEADS_WEIGHTS`` or ``data/weights``."""
    return Path(os.environ.get(WEIGHTS_ENV, DEFAULT_WEIGHTS_DIR))


def unverified_allowed() -> bool:
    """Whether the explicit opt-in to skip checksum verification is set."""
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "").lower() in {"1", "true", "yes"}


def verify_sha256(path: Path, expected: str) -> str:
    """Check ``path`` against a full sha256 or a published prefix; return the full digest.

    An empty ``expected`` (no published checksum) is never a match: such a file loads only
    with the explicit unverified opt-in, and loudly.
    """
    actual = sha256_file(path)
    if not expected or not actual.startswith(expected.lower()):
        message = (
            f"{path}: sha256 {actual} does not match the expected {expected}"
            if expected
            else f"{path}: no published sha256 to verify it against (its sha256 is {actual})"
        )
        if unverified_allowed():
            import warnings

            warnings.warn(
                f"UNVERIFIED WEIGHTS ({ALLOW_UNVERIFIED_ENV} is set): {message}", stacklevel=2
            )
        else:
            raise ChecksumMismatchError(message)
    return actual


def resolve(name: str) -> Path:
    """Path of the registered weights ``name``, verified; a clear error when absent."""
    spec = WEIGHTS.get(name)
    path = weights_dir() / spec.filename
    if not path.is_file():
        raise MissingWeightsError(
            f"pretrained weights {spec.filename!r} ({spec.used_by}) not found at {path}. "
            f"Download it from {spec.url} and place it in {weights_dir()}/ "
            f"(set ${WEIGHTS_ENV} to use another directory)."
        )
    verify_sha256(path, spec.sha256)
    return path


def load_state_dict(path: Path | str, *, sha256: str | None = None) -> dict[str, Any]:
    """Load a state dict with ``torch.load(weights_only=True)``, checking ``sha256`` first."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"weights file not found: {path}")
    if sha256 is not None:
        verify_sha256(path, sha256)
    return torch.load(path, map_location="cpu", weights_only=True)


#: hosts whose share links open a web page rather than the file: fetched by hand
MANUAL_HOSTS = ("drive.google.com", "sharepoint.com", "onedrive.live.com", "1drv.ms")


def weights_status(*, verify: bool = False) -> list[dict[str, Any]]:
    """One row per registered file: name, file, URL, size, sha256, and whether it is present.

    ``verify=True`` also hashes every present file (``verified``: True, False, or None when
    no checksum is published).
    """
    rows = []
    for name in WEIGHTS.names():
        spec = WEIGHTS.get(name)
        path = weights_dir() / spec.filename
        present = path.is_file()
        row: dict[str, Any] = {
            "name": name,
            "file": spec.filename,
            "url": spec.url,
            "size_bytes": spec.size_bytes,
            "sha256": spec.sha256 or None,
            "used_by": spec.used_by,
            "present": present,
            "path": str(path),
        }
        if present:
            row["actual_size_bytes"] = path.stat().st_size
        if verify and present:
            if not spec.sha256:
                row["verified"] = None
            else:
                row["verified"] = sha256_file(path).startswith(spec.sha256.lower())
        rows.append(row)
    return rows


def fetch_weights(name: str, *, progress: bool = True) -> Path:
    """Download the registered file ``name`` into the weights directory and verify it.

    The file grows beside its destination and is renamed into place only once its size and
    sha256 match; an existing verified file is kept. Files behind share pages (Google Drive,
    OneDrive) cannot be fetched by a script: the error says where to get them and where to
    put them.
    """
    from talking_heads.datasets.transfer import download_file

    spec = WEIGHTS.get(name)
    dest = weights_dir() / spec.filename
    if dest.is_file():
        verify_sha256(dest, spec.sha256)
        return dest
    if any(host in spec.url for host in MANUAL_HOSTS):
        raise MissingWeightsError(
            f"{spec.filename!r} is published on a share page that cannot be fetched by a "
            f"script: open {spec.url}, download it and place it at {dest}"
        )
    staging = dest.with_name(dest.name + ".download")
    download_file(spec.url, staging, expected_size=spec.size_bytes, progress=progress)
    try:
        verify_sha256(staging, spec.sha256)
    except ChecksumMismatchError:
        staging.unlink()
        raise
    os.replace(staging, dest)
    return dest
