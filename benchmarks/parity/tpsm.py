"""TPSM: our import + animate against Thin-Plate-Spline-Motion-Model's ``demo.py`` on identical
weights.

    python benchmarks/parity/tpsm.py --official-repo PATH/Thin-Plate-Spline-Motion-Model \\
        [--checkpoint vox.pth.tar] [--mode relative|standard|avd] [--work DIR]

The official side is ``demo.load_checkpoints`` + ``demo.make_animation(mode=...)`` on the CPU
with ``config/vox-256.yaml``; without ``--checkpoint`` the official modules are built from that
config with seed 0 (BatchNorm statistics and InstanceNorm affine parameters randomised) and
saved as ``{inpainting_network, dense_motion_network, kp_detector, bg_predictor, avd_network,
optimizer, optimizer_bg_predictor, optimizer_avd, epoch}``, the layout ``Logger.save_cpk``
writes after ``train_avd``. Ours is ``talking-heads import-checkpoint --experiment
tpsm_vox256`` then ``talking-heads animate`` with PNG output (``--mode standard``: with
``--absolute --no-adapt-scale``); ``--mode avd`` has no CLI flag, so the imported checkpoint
is animated with ``TPSMAnimator.animate_avd`` (fp32, CPU). Upstream's ``relative`` mode, its
default, always adapts the movement scale, as our CLI's default does.

The official code imports unchanged on current torch/torchvision (``resnet18(pretrained=False)``
only warns), so no shim is needed. Exit status 0 when every frame agrees within 2/255.
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


def official_random_checkpoint(params: dict, path: Path) -> Path:
    """Official modules from ``model_params`` (seed 0), saved in the official file layout."""
    from modules.avd_network import AVDNetwork
    from modules.bg_motion_predictor import BGMotionPredictor
    from modules.dense_motion import DenseMotionNetwork
    from modules.inpainting_network import InpaintingNetwork
    from modules.keypoint_detector import KPDetector

    torch.manual_seed(0)
    common = params["common_params"]
    networks = {
        "inpainting_network": InpaintingNetwork(**params["generator_params"], **common),
        "kp_detector": KPDetector(**common),
        "dense_motion_network": DenseMotionNetwork(**common, **params["dense_motion_params"]),
        "bg_predictor": BGMotionPredictor(),
        "avd_network": AVDNetwork(num_tps=common["num_tps"], **params["avd_network_params"]),
    }
    common.randomise_batchnorm_stats(*networks.values())
    randomise_instance_norms(*networks.values())
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="an official checkpoint (vox.pth.tar)")
    parser.add_argument("--mode", choices=MODES, default="relative", help="demo.py --mode")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="parity_tpsm_"))
    source_png, driving_dir, source, driving = common.demo_inputs(work, 256, args.frames)
    config = args.official_repo / "config" / "vox-256.yaml"
    with common.official_code(args.official_repo):
        import yaml
        from demo import load_checkpoints, make_animation

        checkpoint = args.checkpoint
        if checkpoint is None:
            params = yaml.safe_load(config.read_text())["model_params"]
            checkpoint = official_random_checkpoint(params, work / "00000099-checkpoint.pth.tar")
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
            mode=args.mode,
        )
    official = common.to_uint8(np.stack(predictions))
    if args.mode == "avd":
        ours = run_ours_avd(checkpoint, source, driving, work)
    else:
        extra = ["--absolute", "--no-adapt-scale"] if args.mode == "standard" else []
        ours = common.run_ours(
            "tpsm", checkpoint, "tpsm_vox256", source_png, driving_dir, work, extra
        )
    return common.compare(f"tpsm ({args.mode})", ours, official)


if __name__ == "__main__":
    raise SystemExit(main())
