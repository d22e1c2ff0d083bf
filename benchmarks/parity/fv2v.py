"""face-vid2vid: our import + animate against the official ``demo.py`` on identical weights.

    python benchmarks/parity/fv2v.py \\
        --official-repo PATH/One-Shot_Free-View_Neural_Talking_Head_Synthesis \\
        [--checkpoint 00000299-checkpoint.pth.tar] [--gen spade|original] [--absolute] \\
        [--free-view YAW PITCH ROLL] [--frames N] [--work DIR]

The official side is ``demo.load_checkpoints`` + ``demo.make_animation(cpu=True)`` with
``config/vox-256.yaml`` (the repository at 9511d25). Without ``--checkpoint`` the official
modules (``--gen``: ``OcclusionAwareSPADEGenerator``, the demo's default, or
``OcclusionAwareGenerator``) are built from that config with seed 0 and saved as
``{generator, discriminator, kp_detector, he_estimator, epoch}``, the layout of
``Logger.save_cpk``; their BatchNorm statistics are randomised and the generator's last
convolution is scaled (×0.1 for SPADE, ×25 for the original) so that the frames span the grey
range without saturating. Ours is ``talking-heads import-checkpoint --experiment fv2v_vox256``
then ``talking-heads animate`` with PNG output (``--gen original``: the import runs in-process
with ``generator_type: original``, as no experiment holds that generator). Relative mode is
the README's ``--relative --adapt_scale``, ``--absolute`` neither. ``--free-view`` fixes the
driving head angles (demo ``--free_view --yaw --pitch --roll``); ours then runs
``FV2VAnimator.animate(free_view=...)`` in-process on the imported checkpoint (the CLI has no
free-view flags). Exit status 0 when every frame agrees within 2/255.

Shims for the official code on current libraries, applied only while it runs: ``yaml.load``
without a ``Loader`` (PyYAML ≥ 6 requires one) gets ``FullLoader``; ``skimage.draw.circle``
(removed in scikit-image 0.19, imported by ``logger.py``) is provided via ``skimage.draw.disk``;
and with ``--free-view`` ``torch.Tensor.cuda`` returns the tensor itself, because the official
free view builds its angle tensors with ``.cuda()`` even in ``--cpu`` mode.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


@contextlib.contextmanager
def official_shims(cuda_is_identity: bool) -> Iterator[None]:
    """The library shims listed in the module docstring, undone afterwards."""
    import skimage.draw
    import yaml

    saved_load = yaml.load
    had_circle = hasattr(skimage.draw, "circle")
    saved_cuda = torch.Tensor.cuda

    def load(stream, Loader=None):
        return saved_load(stream, Loader=Loader or yaml.FullLoader)

    yaml.load = load
    if not had_circle:
        skimage.draw.circle = functools.partial(_circle, skimage.draw.disk)
    if cuda_is_identity:
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        yaml.load = saved_load
        torch.Tensor.cuda = saved_cuda
        if not had_circle:
            del skimage.draw.circle


def _circle(disk, r, c, radius, shape=None):
    return disk((r, c), radius, shape=shape)


#: factor on the seeded generator's last convolution (:func:`official_checkpoint`)
OUTPUT_GAIN = {"spade": 0.1, "original": 25.0}


def official_checkpoint(params: dict, generator_type: str, path: Path) -> Path:
    """Seeded official modules from ``params`` saved in ``Logger.save_cpk``'s layout."""
    from modules.discriminator import MultiScaleDiscriminator
    from modules.generator import OcclusionAwareGenerator, OcclusionAwareSPADEGenerator
    from modules.keypoint_detector import HEEstimator, KPDetector

    common = params["common_params"]
    generator_class = (
        OcclusionAwareSPADEGenerator if generator_type == "spade" else OcclusionAwareGenerator
    )
    torch.manual_seed(0)
    networks = {
        "generator": generator_class(**params["generator_params"], **common),
        "discriminator": MultiScaleDiscriminator(**params["discriminator_params"], **common),
        "kp_detector": KPDetector(**params["kp_detector_params"], **common),
        "he_estimator": HEEstimator(**params["he_estimator_params"], **common),
    }
    common.randomise_batchnorm_stats(*networks.values())
    # seeded, the original generator's frames lie within a few grey levels of 0.5 and the
    # SPADE generator's are nearly all black or white (sigmoid of tiny or huge logits): the
    # last convolution is scaled so that the compared frames span the grey range unsaturated
    generator = networks["generator"]
    last = generator.decoder.conv_img if generator_type == "spade" else generator.final
    with torch.no_grad():
        last.weight.mul_(OUTPUT_GAIN[generator_type])
        last.bias.mul_(OUTPUT_GAIN[generator_type])
    torch.save({**{k: v.state_dict() for k, v in networks.items()}, "epoch": 0}, path)
    return path


def ours_in_process(
    checkpoint: Path,
    generator_type: str,
    source_png: Path,
    driving_dir: Path,
    work: Path,
    relative: bool,
    free_view: tuple[float, float, float] | None,
) -> np.ndarray:
    """Import in-process (any ``generator_type``), then animate: through ``talking-heads
    animate`` without free view, in-process with it."""
    from talking_heads.config import experiment_model_config
    from talking_heads.models.fv2v.animate import FreeView, FV2VAnimator
    from talking_heads.models.fv2v.checkpoint import import_official
    from talking_heads.utils.media import read_frames

    model_cfg = {**experiment_model_config("fv2v_vox256"), "generator_type": generator_type}
    ours = import_official(checkpoint, work / "ours.ckpt", model_cfg)
    if free_view is None:
        out = work / "ours_frames"
        flags = [] if relative else ["--absolute", "--no-adapt-scale"]
        command = ["talking-heads", "animate", "--method", "fv2v", "--checkpoint", str(ours)]
        command += ["--source", str(source_png), "--driving", str(driving_dir)]
        command += ["--out", str(out), "--device", "cpu", "--precision", "fp32"]
        subprocess.run([*command, *flags], check=True)
        return read_frames(out)
    animator = FV2VAnimator.from_checkpoint(ours)
    source = torch.from_numpy(read_frames(source_png)[0]).permute(2, 0, 1).float() / 255
    driving = torch.from_numpy(read_frames(driving_dir)).permute(0, 3, 1, 2).float() / 255
    generated = animator.animate(
        source,
        driving,
        relative=relative,
        adapt_scale=relative,
        free_view=FreeView(*free_view),
    )
    return common.to_uint8(generated.permute(0, 2, 3, 1).numpy())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="an official checkpoint")
    parser.add_argument("--gen", choices=("spade", "original"), default="spade")
    parser.add_argument("--absolute", action="store_true", help="absolute instead of relative")
    parser.add_argument(
        "--free-view", type=float, nargs=3, metavar=("YAW", "PITCH", "ROLL"), default=None
    )
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="parity_fv2v_"))
    work.mkdir(parents=True, exist_ok=True)
    source_png, driving_dir, source, driving = common.demo_inputs(work, 256, args.frames)
    config = args.official_repo / "config" / "vox-256.yaml"
    relative = not args.absolute
    free_view = tuple(args.free_view) if args.free_view else None
    with (
        common.official_code(args.official_repo, stub_modules=["ffmpeg"]),
        official_shims(cuda_is_identity=free_view is not None),
    ):
        import yaml
        from demo import load_checkpoints, make_animation

        checkpoint = args.checkpoint
        if checkpoint is None:
            params = yaml.safe_load(config.read_text())["model_params"]
            checkpoint = official_checkpoint(params, args.gen, work / "00000000-checkpoint.pth.tar")
        generator, kp_detector, he_estimator = load_checkpoints(
            str(config), str(checkpoint), gen=args.gen, cpu=True
        )
        estimate_jacobian = yaml.safe_load(config.read_text())["model_params"]["common_params"][
            "estimate_jacobian"
        ]
        yaw, pitch, roll = free_view or (0, 0, 0)
        predictions = make_animation(
            source,
            list(driving),
            generator,
            kp_detector,
            he_estimator,
            relative=relative,
            adapt_movement_scale=relative,
            estimate_jacobian=estimate_jacobian,
            cpu=True,
            free_view=free_view is not None,
            yaw=yaw,
            pitch=pitch,
            roll=roll,
        )
    official = common.to_uint8(np.stack(predictions))
    saturated = 100 * np.isin(official, (0, 255)).mean()
    print(
        f"official frames: mean {official.mean():.1f}, std {official.std():.1f} grey levels, "
        f"{saturated:.1f}% of values at 0 or 255"
    )
    if args.gen == "spade" and free_view is None:
        extra = ["--absolute", "--no-adapt-scale"] if args.absolute else []
        ours = common.run_ours(
            "fv2v", checkpoint, "fv2v_vox256", source_png, driving_dir, work, extra
        )
    else:
        ours = ours_in_process(
            checkpoint, args.gen, source_png, driving_dir, work, relative, free_view
        )
    mode = "relative" if relative else "absolute"
    label = f"fv2v ({args.gen}, {mode}{', free view' if free_view else ''})"
    return common.compare(label, ours, official)


if __name__ == "__main__":
    raise SystemExit(main())
