"""FOMM: our import + animate against first-order-model's ``demo.py`` on identical weights.

    python benchmarks/parity/fomm.py --official-repo PATH/first-order-model \\
        [--checkpoint vox-cpk.pth.tar] [--absolute] [--work DIR]

The official side is ``demo.load_checkpoints`` + ``demo.make_animation(cpu=True)`` with
``config/vox-256.yaml``; without ``--checkpoint`` the official modules are built from that
config with seed 0 (BatchNorm statistics randomised) and saved as ``{generator, kp_detector,
discriminator, epoch}``, the layout of ``Logger.save_cpk``. Ours is ``talking-heads
import-checkpoint --experiment fomm_vox256`` then ``talking-heads animate`` with PNG output.
Exit status 0 when every frame agrees within 2/255.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="an official checkpoint (vox-cpk.pth.tar)")
    parser.add_argument("--absolute", action="store_true", help="absolute instead of relative")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="parity_fomm_"))
    source_png, driving_dir, source, driving = common.demo_inputs(work, 256, args.frames)
    config = args.official_repo / "config" / "vox-256.yaml"
    with common.official_code(args.official_repo, stub_modules=["ffmpeg"]):
        import yaml
        from demo import load_checkpoints, make_animation
        from modules.discriminator import MultiScaleDiscriminator
        from modules.generator import OcclusionAwareGenerator
        from modules.keypoint_detector import KPDetector

        checkpoint = args.checkpoint
        if checkpoint is None:
            params = yaml.safe_load(config.read_text())["model_params"]
            torch.manual_seed(0)
            generator = OcclusionAwareGenerator(
                **params["generator_params"], **params["common_params"]
            )
            kp_detector = KPDetector(**params["kp_detector_params"], **params["common_params"])
            discriminator = MultiScaleDiscriminator(
                **params["discriminator_params"], **params["common_params"]
            )
            common.randomise_batchnorm_stats(generator, kp_detector, discriminator)
            checkpoint = work / "00000000-checkpoint.pth.tar"
            torch.save(
                {
                    "generator": generator.state_dict(),
                    "kp_detector": kp_detector.state_dict(),
                    "discriminator": discriminator.state_dict(),
                    "epoch": 0,
                },
                checkpoint,
            )
        generator, kp_detector = load_checkpoints(str(config), str(checkpoint), cpu=True)
        relative = not args.absolute
        predictions = make_animation(
            source,
            list(driving),
            generator,
            kp_detector,
            relative=relative,
            adapt_movement_scale=relative,
            cpu=True,
        )
    official = common.to_uint8(np.stack(predictions))
    extra = ["--absolute", "--no-adapt-scale"] if args.absolute else []
    ours = common.run_ours("fomm", checkpoint, "fomm_vox256", source_png, driving_dir, work, extra)
    return common.compare("fomm", ours, official)


if __name__ == "__main__":
    raise SystemExit(main())
