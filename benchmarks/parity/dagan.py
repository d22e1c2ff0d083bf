"""DaGAN: our import + animate against CVPR2022-DaGAN's ``demo.py`` on identical weights.

    python benchmarks/parity/dagan.py --official-repo PATH/CVPR2022-DaGAN \\
        [--checkpoint DaGAN_vox_adv_256.pth.tar --depth-dir PATH/depth/models/weights_19] \\
        [--absolute] [--work DIR]

The official side is ``demo.load_checkpoints`` + ``demo.make_animation(cpu=True)`` with
``config/vox-adv-256.yaml`` and the README's ``--kp_num 15 --generator DepthAwareGenerator``,
the depth network built and loaded as ``demo.py``'s ``__main__`` does
(``depth.ResnetEncoder(18, False)``, ``DepthDecoder(num_ch_enc, scales=range(4))``, the encoder
file filtered to the encoder's keys). Without ``--checkpoint`` the official modules are built
from that config with seed 0 (BatchNorm statistics randomised, output heads livened up: see
:func:`liven_up`) and saved as upstream's DDP training does: ``{generator, kp_detector,
discriminator}`` with ``module.``-prefixed keys, three optimiser states and ``epoch``; the
depth model likewise (seed 1) as ``weights_19/encoder.pth`` (with monodepth2's ``height``,
``width``, ``use_stereo`` entries) and ``weights_19/depth.pth``. Ours is ``talking-heads
import-checkpoint --experiment dagan_vox256`` (the depth files found through
``$TALKING_HEADS_WEIGHTS``; ``TALKING_HEADS_ALLOW_UNVERIFIED_WEIGHTS=1`` is set for it, as no
checksum of the depth files is published) then ``talking-heads animate`` with PNG output.
Exit status 0 when every frame agrees within 2/255.

Shims for current libraries, applied to the official code here only: ``demo.py`` calls
``yaml.load(f)`` without a Loader (an error since PyYAML 6), so its ``yaml`` is given a
``load`` that uses ``yaml.SafeLoader``; ``load_checkpoints`` and ``make_animation`` read the
globals ``opt``, ``depth_encoder`` and ``depth_decoder`` that ``demo.py`` sets in its
``__main__`` block, so they are set on the imported module.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

KP_NUM = 15
GENERATOR = "DepthAwareGenerator"


def liven_up(
    generator: torch.nn.Module, kp_detector: torch.nn.Module, depth_decoder: torch.nn.Module
) -> None:
    """Make randomly initialised networks respond to their inputs (seeded).

    Fresh networks give nearly uniform keypoint heatmaps (keypoints that hardly move), a flat
    disparity, identity Jacobians, an attention with ``gamma`` = 0 and an almost constant
    image; such weights would let a wrong motion or depth path pass. The output heads are
    scaled up so that the keypoints move with the driving frames, the Jacobians and the
    disparity vary, the motion masks and the occlusion are not flat and the frames span most
    of [0, 1], and ``gamma`` is set to 2 so that the depth-aware attention changes the frames.
    """
    rng = torch.Generator().manual_seed(1)
    dense_motion = generator.dense_motion_network
    dispconv = depth_decoder.convs[("dispconv", 0)].conv
    with torch.no_grad():
        generator.AttnModule.gamma.fill_(2.0)
        generator.final.weight.mul_(20)
        dense_motion.mask.weight.mul_(10)
        dense_motion.occlusion.weight.mul_(10)
        kp_detector.kp.weight.mul_(30)
        kp_detector.jacobian.weight.copy_(
            torch.randn(kp_detector.jacobian.weight.shape, generator=rng) * 1e-2
        )
        dispconv.weight.mul_(30)
        dispconv.bias.fill_(-2.5)


def write_official_files(config: Path, work: Path) -> tuple[Path, Path]:
    """Random official-layout DaGAN checkpoint and depth folder (official modules)."""
    import depth
    import yaml
    from modules.discriminator import MultiScaleDiscriminator
    from modules.generator import DepthAwareGenerator
    from modules.keypoint_detector import KPDetector

    params = yaml.safe_load(config.read_text())["model_params"]
    params["common_params"]["num_kp"] = KP_NUM
    torch.manual_seed(0)
    generator = DepthAwareGenerator(**params["generator_params"], **params["common_params"])
    discriminator = MultiScaleDiscriminator(
        **params["discriminator_params"], **params["common_params"]
    )
    kp_detector = KPDetector(
        **params["kp_detector_params"], **{**params["common_params"], "num_channels": 4}
    )
    common.randomise_batchnorm_stats(generator, kp_detector, discriminator)
    torch.manual_seed(1)
    encoder = depth.ResnetEncoder(18, False)
    decoder = depth.DepthDecoder(num_ch_enc=encoder.num_ch_enc, scales=range(4))
    common.randomise_batchnorm_stats(encoder, seed=1)
    liven_up(generator, kp_detector, decoder)
    optimisers = {
        f"optimizer_{name}": torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999))
        for name, module in (
            ("generator", generator),
            ("discriminator", discriminator),
            ("kp_detector", kp_detector),
        )
    }
    checkpoint = work / "DaGAN_vox_adv_256.pth.tar"
    torch.save(
        {
            **{
                name: {f"module.{k}": v for k, v in module.state_dict().items()}
                for name, module in (
                    ("generator", generator),
                    ("discriminator", discriminator),
                    ("kp_detector", kp_detector),
                )
            },
            **{name: opt.state_dict() for name, opt in optimisers.items()},
            "epoch": 149,
        },
        checkpoint,
    )
    depth_dir = work / "weights" / "weights_19"
    depth_dir.mkdir(parents=True, exist_ok=True)
    torch.save(
        {**encoder.state_dict(), "height": 256, "width": 256, "use_stereo": False},
        depth_dir / "encoder.pth",
    )
    torch.save(decoder.state_dict(), depth_dir / "depth.pth")
    return checkpoint, depth_dir


def run_official(
    repo: Path,
    checkpoint: Path | None,
    depth_dir: Path | None,
    work: Path,
    source: np.ndarray,
    driving: np.ndarray,
    relative: bool,
) -> tuple[np.ndarray, Path, Path]:
    """The official ``make_animation`` frames, and the checkpoint and depth folder used."""
    config = repo / "config" / "vox-adv-256.yaml"
    with common.official_code(repo):
        import demo
        import depth
        import yaml

        if checkpoint is None:
            checkpoint, depth_dir = write_official_files(config, work)
        demo.yaml = types.SimpleNamespace(load=lambda f: yaml.load(f, Loader=yaml.SafeLoader))
        demo.opt = argparse.Namespace(kp_num=KP_NUM, generator=GENERATOR)
        depth_encoder = depth.ResnetEncoder(18, False)
        depth_decoder = depth.DepthDecoder(num_ch_enc=depth_encoder.num_ch_enc, scales=range(4))
        encoder_state = torch.load(depth_dir / "encoder.pth", map_location="cpu")
        depth_encoder.load_state_dict(
            {k: v for k, v in encoder_state.items() if k in depth_encoder.state_dict()}
        )
        depth_decoder.load_state_dict(torch.load(depth_dir / "depth.pth", map_location="cpu"))
        demo.depth_encoder, demo.depth_decoder = depth_encoder.eval(), depth_decoder.eval()
        generator, kp_detector = demo.load_checkpoints(str(config), str(checkpoint), cpu=True)
        _, _, predictions, _ = demo.make_animation(
            source,
            list(driving),
            generator,
            kp_detector,
            relative=relative,
            adapt_movement_scale=relative,
            cpu=True,
        )
    return common.to_uint8(np.stack(predictions)), checkpoint, depth_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="DaGAN_vox_adv_256.pth.tar")
    parser.add_argument(
        "--depth-dir", type=Path, help="the depth model's folder (encoder.pth, depth.pth)"
    )
    parser.add_argument("--absolute", action="store_true", help="absolute instead of relative")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here")
    args = parser.parse_args()
    if (args.checkpoint is None) != (args.depth_dir is None):
        parser.error("--checkpoint and --depth-dir go together")

    work = args.work or Path(tempfile.mkdtemp(prefix="parity_dagan_"))
    source_png, driving_dir, source, driving = common.demo_inputs(work, 256, args.frames)
    relative = not args.absolute
    official, checkpoint, depth_dir = run_official(
        args.official_repo, args.checkpoint, args.depth_dir, work, source, driving, relative
    )
    weights = work / "weights"
    if depth_dir.resolve() != (weights / "weights_19").resolve():
        shutil.copytree(depth_dir, weights / "weights_19", dirs_exist_ok=True)
    os.environ["TALKING_HEADS_WEIGHTS"] = str(weights)
    os.environ["TALKING_HEADS_ALLOW_UNVERIFIED_WEIGHTS"] = "1"
    extra = ["--absolute", "--no-adapt-scale"] if args.absolute else []
    ours = common.run_ours(
        "dagan", checkpoint, "dagan_vox256", source_png, driving_dir, work, extra
    )
    return common.compare("dagan", ours, official)


if __name__ == "__main__":
    raise SystemExit(main())
