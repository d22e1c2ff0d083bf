"""MRAA: our import + animate against articulated-animation's own code on identical weights.

    python benchmarks/parity/mraa.py --official-repo PATH/articulated-animation \\
        [--mode relative|standard|avd|reconstruction] [--checkpoint vox256.pth] [--work DIR]

The official side is ``demo.load_checkpoints`` + ``demo.make_animation(animation_mode=MODE,
cpu=True)`` with ``config/vox256.yaml`` for the animation modes, and ``reconstruction.
reconstruction`` (the first driving frame as the source, the background motion predictor on)
for ``--mode reconstruction``. Without ``--checkpoint`` the official modules (Generator,
RegionPredictor, BGMotionPredictor, AVDNetwork) are built from that config with seed 0, their
BatchNorm statistics randomised and the background predictor's zero-initialised head given
small random weights (so that the background motion is not the identity), and saved as
``{generator, region_predictor, bg_predictor, avd_network, optimizer_reconstruction,
epoch_reconstruction}``, the layout of ``Logger.save_cpk``. Ours is ``talking-heads
import-checkpoint --experiment mraa_vox256``, then ``talking-heads animate`` with PNG output
(``relative``: default flags; ``standard``: ``--absolute --no-adapt-scale``) or, for the modes
the CLI has no flag for, ``MRAAAnimator.animate_avd`` / ``MRAAAnimator.reconstruct`` on the
imported checkpoint. Exit status 0 when every frame agrees within 2/255.

Use a checkout at commit 9b5de78 or earlier (at HEAD ``run.py`` imports a module that does
not exist and ``demo.py`` misses ``import os``). Shims for current libraries, applied while the
official code runs and nowhere else: ``yaml.load`` without a ``Loader`` (PyYAML ≥ 6) is given
``yaml.SafeLoader``; ``skimage.draw.circle`` (removed in scikit-image 0.19; used by the
official ``logger.py`` visualiser) is rebuilt from ``skimage.draw.disk``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

MODES = ("relative", "standard", "avd", "reconstruction")


def official_networks(params: dict) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """Upstream's generator, region predictor and background predictor built (in that order)
    from ``model_params``; needs :func:`common.official_code`."""
    from modules.bg_motion_predictor import BGMotionPredictor
    from modules.generator import Generator
    from modules.region_predictor import RegionPredictor

    generator = Generator(
        num_regions=params["num_regions"],
        num_channels=params["num_channels"],
        revert_axis_swap=params["revert_axis_swap"],
        **params["generator_params"],
    )
    region_predictor = RegionPredictor(
        num_regions=params["num_regions"],
        num_channels=params["num_channels"],
        estimate_affine=params["estimate_affine"],
        **params["region_predictor_params"],
    )
    bg_predictor = BGMotionPredictor(
        num_channels=params["num_channels"], **params["bg_predictor_params"]
    )
    return generator, region_predictor, bg_predictor


@contextlib.contextmanager
def current_library_shims() -> Iterator[None]:
    """``yaml.load(f)`` and ``skimage.draw.circle`` as the official code expects them."""
    import skimage.draw
    import yaml

    original_load = yaml.load
    had_circle = hasattr(skimage.draw, "circle")

    def load(stream, Loader=None, **kwargs):
        return original_load(stream, Loader=Loader or yaml.SafeLoader, **kwargs)

    def circle(r, c, radius, shape=None):
        return skimage.draw.disk((r, c), radius, shape=shape)

    yaml.load = load
    if not had_circle:
        skimage.draw.circle = circle
    try:
        yield
    finally:
        yaml.load = original_load
        if not had_circle:
            del skimage.draw.circle


def official_checkpoint(config: dict, path: Path) -> Path:
    """Seeded official modules with non-trivial BatchNorm statistics, saved as upstream."""
    from modules.avd_network import AVDNetwork

    params = config["model_params"]
    torch.manual_seed(0)
    generator, region_predictor, bg_predictor = official_networks(params)
    avd_network = AVDNetwork(num_regions=params["num_regions"], **params["avd_network_params"])
    common.randomise_batchnorm_stats(generator, region_predictor, bg_predictor, avd_network)
    with torch.no_grad():
        bg_predictor.fc.weight.normal_(0, 1e-3)
    optimizer = torch.optim.Adam(
        [*generator.parameters(), *region_predictor.parameters(), *bg_predictor.parameters()],
        lr=2e-4,
        betas=(0.5, 0.999),
    )
    torch.save(
        {
            "generator": generator.state_dict(),
            "region_predictor": region_predictor.state_dict(),
            "bg_predictor": bg_predictor.state_dict(),
            "avd_network": avd_network.state_dict(),
            "optimizer_reconstruction": optimizer.state_dict(),
            "epoch_reconstruction": 0,
        },
        path,
    )
    return path


def official_reconstruction(
    config: dict, checkpoint: Path, driving: np.ndarray, work: Path
) -> np.ndarray:
    """``reconstruction.reconstruction`` on one clip: its generator's predictions, (T, H, W, 3)."""
    from reconstruction import reconstruction

    params = config["model_params"]
    generator, region_predictor, bg_predictor = official_networks(params)
    predictions: list[np.ndarray] = []
    generator.register_forward_hook(
        lambda module, args, out: predictions.append(
            out["prediction"][0].permute(1, 2, 0).numpy().copy()
        )
    )
    video = torch.tensor(driving.astype(np.float32)).permute(3, 0, 1, 2)  # (3, T, H, W)
    reconstruction(
        config,
        generator,
        region_predictor,
        bg_predictor,
        str(checkpoint),
        str(work / "official"),
        [{"video": video, "name": "carphone"}],
    )
    return np.stack(predictions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="an official checkpoint (vox256.pth)")
    parser.add_argument("--mode", choices=MODES, default="relative")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="parity_mraa_"))
    source_png, driving_dir, source, driving = common.demo_inputs(work, 256, args.frames)
    config_path = args.official_repo / "config" / "vox256.yaml"
    with common.official_code(args.official_repo), current_library_shims():
        import yaml

        config = yaml.safe_load(config_path.read_text())
        checkpoint = args.checkpoint or official_checkpoint(
            config, work / "00000000-cpk-reconstruction.pth"
        )
        if args.mode == "reconstruction":
            predictions = official_reconstruction(config, checkpoint, driving, work)
        else:
            from demo import load_checkpoints, make_animation

            generator, region_predictor, avd_network = load_checkpoints(
                str(config_path), str(checkpoint), cpu=True
            )
            predictions = make_animation(
                source,
                list(driving),
                generator,
                region_predictor,
                avd_network,
                animation_mode=args.mode,
                cpu=True,
            )
    official = common.to_uint8(np.stack(predictions))

    if args.mode in ("relative", "standard"):
        extra = ["--absolute", "--no-adapt-scale"] if args.mode == "standard" else []
        ours = common.run_ours(
            "mraa", checkpoint, "mraa_vox256", source_png, driving_dir, work, extra
        )
    else:
        from talking_heads.cli import main as cli
        from talking_heads.models.mraa.animate import MRAAAnimator

        imported = work / "ours.ckpt"
        argv = ["import-checkpoint", "--method", "mraa", "--official", str(checkpoint)]
        cli([*argv, "--out", str(imported), "--experiment", "mraa_vox256"])
        animator = MRAAAnimator.from_checkpoint(imported)
        frames = torch.tensor(driving, dtype=torch.float32).permute(0, 3, 1, 2)
        if args.mode == "avd":
            image = torch.tensor(source, dtype=torch.float32).permute(2, 0, 1)
            generated = animator.animate_avd(image, frames)
        else:
            generated = animator.reconstruct(frames)
        ours = common.to_uint8(generated.permute(0, 2, 3, 1).numpy())
    return common.compare(f"mraa ({args.mode})", ours, official)


if __name__ == "__main__":
    raise SystemExit(main())
