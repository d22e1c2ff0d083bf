"""Seeded randomly initialised networks for the metric tests, and every survey metric's weight
file written under its upstream name in the upstream layout.

No pretrained file is reachable offline, so tests run the real loading code on random
weights: the files differ from the released ones only in their values (the sha256 check is
skipped with the explicit opt-in ``TALKING_HEADS_ALLOW_UNVERIFIED_WEIGHTS=1``). BatchNorm
statistics are drawn away from their initial 0/1, as trained ones are, so no layer is the
identity. Imported by the test modules as ``from random_weights import ...``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from talking_heads import weights


def randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Seeded variance-preserving weights, BatchNorm statistics and scales; eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in net.state_dict().items():
            if value.is_floating_point():
                noise = torch.randn(value.shape, generator=gen) * 0.05
                if value.ndim > 1:  # conv / linear weights: variance-preserving scale
                    fan_in = value[0].numel()
                    value.copy_(torch.randn(value.shape, generator=gen) / fan_in**0.5)
                elif name.endswith("running_var"):
                    value.copy_(1.0 + noise.abs())
                elif name.endswith("weight"):  # BatchNorm scales, PReLU slopes
                    value.copy_(1.0 + noise)
                else:
                    value.copy_(noise)
    return net.eval()


def spread_batchnorm_variances(
    net: torch.nn.Module, low: float = 0.5, high: float = 1.5, means: float = 0.0
) -> torch.nn.Module:
    """Running variances uniform in ``[low, high]`` (and means in ``[-means, means]``)."""
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            if means:
                module.running_mean.uniform_(-means, means)
            module.running_var.uniform_(low, high)
    return net


def calibrate_batchnorm(net: torch.nn.Module, *inputs: torch.Tensor) -> torch.nn.Module:
    """Set every BatchNorm's running statistics to the batch statistics of ``net(*inputs)``
    (a data-dependent initialisation): activations stay normalised through a deep random
    network, so its outputs keep depending on its input instead of collapsing to one value.
    Returns ``net`` in eval mode."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative average over the calibration batch
    with torch.no_grad():
        net.train()(*inputs)
    for module in norms:
        module.momentum = 0.1
    return net.eval()


def random_fid_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """pytorch-fid's Inception (``pt_inception-2015-12-05``) layout with random values.

    The running means stay 0: shifted means make this deep random network's pool3 features
    the same for every input.
    """
    from talking_heads.nets.inception import FIDInception

    torch.manual_seed(seed)
    return spread_batchnorm_variances(FIDInception()).inception.state_dict()


def calibrated_fid_state() -> dict[str, torch.Tensor]:
    """The FID Inception layout with random weights and BatchNorm statistics calibrated on
    carphone frames (:func:`calibrate_batchnorm`): its features differ between frames."""
    from metric_media import carphone_frames, to_tensor
    from talking_heads.nets.inception import FIDInception

    torch.manual_seed(0)
    calibration = to_tensor(carphone_frames(16, start=100)).float()
    return calibrate_batchnorm(FIDInception(), calibration).inception.state_dict()


def seeded_syncnet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """syncnet_python's ``syncnet_v2.model`` layout with random values."""
    from talking_heads.metrics.sync import SyncNet

    torch.manual_seed(seed)
    return spread_batchnorm_variances(SyncNet(), 0.5, 2.0, means=0.5).state_dict()


def random_hopenet(seed: int = 0) -> torch.nn.Module:
    """deep-head-pose's Hopenet with random values; small fc heads keep the angle bins apart."""
    from talking_heads.nets.hopenet import Hopenet

    torch.manual_seed(seed)
    net = Hopenet()
    gen = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for name, value in net.state_dict().items():
            if name.endswith("running_var"):
                value.copy_(1.0 + 0.1 * torch.rand(value.shape, generator=gen))
            elif name.startswith("fc_"):
                value.copy_(0.05 * torch.randn(value.shape, generator=gen))
    return net.eval()


def random_face_states() -> dict[str, dict[str, torch.Tensor]]:
    """face_alignment 1.5's S3FD and 2D-FAN-4 layouts with random values, by weights name."""
    from talking_heads.nets.fan import FAN
    from talking_heads.nets.s3fd import S3FD

    torch.manual_seed(0)
    detector = S3FD().eval()
    torch.manual_seed(1)
    fan = spread_batchnorm_variances(FAN(4), 0.5, 1.5, means=0.1)
    return {"s3fd": detector.state_dict(), "fan68": fan.state_dict()}


def write_survey_metric_weights(folder: Path) -> dict[str, Path]:
    """Every network the survey metrics load, as a random file in its upstream layout.

    LPIPS's AlexNet (its linear heads ship with ``lpips``), FID/IS's Inception, SyncNet,
    ArcFace iresnet100, OpenFace, S3FD, 2D-FAN-4 and Hopenet, each at
    ``folder/<registered file name>``; the Inception's BatchNorm statistics are calibrated
    on carphone frames (:func:`calibrate_batchnorm`) so FID and IS see input-dependent
    features. Returns the paths by weights name.
    """
    from torchvision.models import alexnet

    from talking_heads.metrics.identity import IResNet, OpenFaceNet

    torch.manual_seed(0)
    states = {
        "alexnet": alexnet(weights=None).state_dict(),
        "pt_inception": calibrated_fid_state(),
        "syncnet": seeded_syncnet_state(),
        "arcface_r100": randomise(IResNet("r100")).state_dict(),
        "openface": randomise(OpenFaceNet(), seed=1).state_dict(),
        "hopenet": random_hopenet().state_dict(),
        **random_face_states(),
    }
    paths = {}
    for name, state in states.items():
        path = folder / weights.WEIGHTS.get(name).filename
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        paths[name] = path
    return paths
