"""TPSM: our import + animate against Thin-Plate-Spline-Motion-Model's ``demo.py`` on identical
weights.

    python benchmarks/parity/tpsm.py --official-repo PATH/Thin-Plate-Spline-Motion-Model \\
        [--checkpoint vox.pth.tar] [--seeds 0,1,2] [--modes relative,standard,avd] [--work DIR]

The official side is ``demo.load_checkpoints`` + ``demo.make_animation(mode=...)`` on the CPU
with ``config/vox-256.yaml``; without ``--checkpoint`` the official modules are built from that
config with each seed of ``--seeds`` (BatchNorm statistics and InstanceNorm affine parameters
randomised) and saved as ``{inpainting_network, dense_motion_network, kp_detector,
bg_predictor, avd_network, optimizer, optimizer_bg_predictor, optimizer_avd, epoch}``, the
layout ``Logger.save_cpk`` writes after ``train_avd``. Ours is ``talking-heads
import-checkpoint --experiment tpsm_vox256`` then ``talking-heads animate`` with PNG output
(``standard``: with ``--absolute --no-adapt-scale``); ``avd`` has no CLI flag, so the imported
checkpoint is animated with ``TPSMAnimator.animate_avd`` (fp32, CPU). Upstream's ``relative``
mode, its default, always adapts the movement scale, as our CLI's default does. The default
modes are ``relative`` and ``standard``.

The official code imports unchanged on current torch/torchvision (``resnet18(pretrained=False)``
only warns), so no shim is needed. Exit status 0 when every frame of every seed and mode agrees
within 2/255.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

MODES = ("relative", "standard", "avd")


def randomise_instance_norms(*modules: torch.nn.Module, seed: int = 1) -> None:
    """Give every affine InstanceNorm non-trivial scales and shifts (fresh ones are 1 and 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for layer in module.modules():
                if isinstance(layer, torch.nn.InstanceNorm2d) and layer.affine:
                    n = layer.num_features
                    layer.weight.copy_(1 + torch.randn(n, generator=generator) * 0.1)
                    layer.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def official_random_checkpoint(params: dict, path: Path, seed: int = 0) -> Path:
    """Official modules from ``model_params`` (``seed``), saved in the official file layout."""
    from modules.avd_network import AVDNetwork
    from modules.bg_motion_predictor import BGMotionPredictor
    from modules.dense_motion import DenseMotionNetwork
    from modules.inpainting_network import InpaintingNetwork
    from modules.keypoint_detector import KPDetector

    torch.manual_seed(seed)
    shared = params["common_params"]
    networks = {
        "inpainting_network": InpaintingNetwork(**params["generator_params"], **shared),
        "kp_detector": KPDetector(**shared),
        "dense_motion_network": DenseMotionNetwork(**shared, **params["dense_motion_params"]),
        "bg_predictor": BGMotionPredictor(),
        "avd_network": AVDNetwork(num_tps=shared["num_tps"], **params["avd_network_params"]),
    }
    common.randomise_batchnorm_stats(*networks.values(), seed=seed)
    randomise_instance_norms(*networks.values(), seed=seed + 1)
    generator_params = [
        p
        for name in ("inpainting_network", "dense_motion_network", "kp_detector")
        for p in networks[name].parameters()
    ]
    adam = {"betas": (0.5, 0.999), "weight_decay": 1e-4}
    optimizer = torch.optim.Adam(generator_params, lr=2e-4, **adam)
    optimizer_bg = torch.optim.Adam(networks["bg_predictor"].parameters(), lr=2e-4, **adam)
    optimizer_avd = torch.optim.Adam(networks["avd_network"].parameters(), lr=1e-3)
    checkpoint = {name: network.state_dict() for name, network in networks.items()}
    checkpoint.update(
        optimizer=optimizer.state_dict(),
        optimizer_bg_predictor=optimizer_bg.state_dict(),
        optimizer_avd=optimizer_avd.state_dict(),
        epoch=99,
    )
    torch.save(checkpoint, path)
    return path


def run_ours_avd(
    official_checkpoint: Path, source: np.ndarray, driving: np.ndarray, work: Path
) -> np.ndarray:
    """``talking-heads import-checkpoint``, then :meth:`TPSMAnimator.animate_avd` (fp32, CPU)
    on the same frames; uint8 ``(T, H, W, 3)``."""
    from talking_heads.models.tpsm.animate import TPSMAnimator

    ours = work / "ours.ckpt"
    subprocess.run(
        [
            "talking-heads",
            "import-checkpoint",
            "--method",
            "tpsm",
            "--official",
            str(official_checkpoint),
            "--out",
            str(ours),
            "--experiment",
            "tpsm_vox256",
        ],
        check=True,
    )
    animator = TPSMAnimator.from_checkpoint(ours)
    frames = animator.animate_avd(
        torch.from_numpy(source).permute(2, 0, 1).float(),
        torch.from_numpy(driving).permute(0, 3, 1, 2).float(),
    )
    return common.to_uint8(frames.permute(0, 2, 3, 1).numpy())


def official_frames(
    repo: Path, checkpoint: Path, source: np.ndarray, driving: np.ndarray, mode: str
) -> np.ndarray:
    """``demo.load_checkpoints`` + ``demo.make_animation(mode=mode)`` on the CPU, uint8."""
    config = repo / "config" / "vox-256.yaml"
    with common.official_code(repo):
        from demo import load_checkpoints, make_animation

        device = torch.device("cpu")
        inpainting, kp_detector, dense_motion_network, avd_network = load_checkpoints(
            config_path=str(config), checkpoint_path=str(checkpoint), device=device
        )
        predictions = make_animation(
            source,
            list(driving),
            inpainting,
            kp_detector,
            dense_motion_network,
            avd_network,
            device=device,
            mode=mode,
        )
    return common.to_uint8(np.stack(predictions))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_check_options(parser, MODES, ("relative", "standard"))
    parser.add_argument("--checkpoint", type=Path, help="an official checkpoint (vox.pth.tar)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="parity_tpsm_"))
    source_png, driving_dir, source, driving = common.demo_inputs(work, 256, args.frames)
    repo = args.official_repo

    def weights(seed: int | None, folder: Path) -> Path:
        if seed is None:
            return args.checkpoint
        with common.official_code(repo):
            import yaml

            config = repo / "config" / "vox-256.yaml"
            params = yaml.safe_load(config.read_text())["model_params"]
            return official_random_checkpoint(params, folder / "00000099-checkpoint.pth.tar", seed)

    def animate(checkpoint: Path, mode: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        official = official_frames(repo, checkpoint, source, driving, mode)
        folder.mkdir(parents=True, exist_ok=True)
        if mode == "avd":
            return run_ours_avd(checkpoint, source, driving, folder), official
        extra = ["--absolute", "--no-adapt-scale"] if mode == "standard" else []
        ours = common.run_ours(
            "tpsm", checkpoint, "tpsm_vox256", source_png, driving_dir, folder, extra
        )
        return ours, official

    seeds = None if args.checkpoint else args.seeds
    return common.check_seeds("tpsm", seeds, args.modes, weights, animate, work)


if __name__ == "__main__":
    raise SystemExit(main())
