"""The shared batched animator: best-frame alignment, memory layout, mixed precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from talking_heads.config import experiment_model_config
from talking_heads.models.fomm.animate import FOMMAnimator
from talking_heads.models.motion import animate as motion


@pytest.fixture(scope="module")
def animator() -> FOMMAnimator:
    torch.manual_seed(0)
    networks = FOMMAnimator.build(experiment_model_config("fomm_demo"))
    return FOMMAnimator(networks, resolution=64)


def frames(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 8, 8, generator=generator)
    return torch.nn.functional.interpolate(small, size=(64, 64), mode="bicubic").clamp(0, 1)


def test_reference_frame_is_the_demos_forward_and_backward_animation(animator) -> None:
    source, driving = frames(1, seed=1)[0], frames(7)
    best = 4
    ours = animator.animate(source, driving, reference_frame=best, adapt_scale=False)
    # demo.py with --best_frame: animate driving[best:] and driving[:best + 1] reversed, each
    # relative to its own first frame, and join backward[::-1] + forward[1:]
    forward = animator.animate(source, driving[best:], adapt_scale=False)
    backward = animator.animate(source, driving[: best + 1].flip(0), adapt_scale=False)
    joined = torch.cat([backward.flip(0), forward[1:]])
    torch.testing.assert_close(ours, joined, atol=1e-5, rtol=0)
    assert (ours - animator.animate(source, driving, adapt_scale=False)).abs().max() > 1e-4


def test_best_frame_is_the_nearest_normalised_landmark_set() -> None:
    rng = np.random.default_rng(0)
    face = rng.uniform(0, 100, size=(68, 2))
    # a scaled and shifted copy normalises to the same shape; noise moves it away
    candidates = [face + rng.normal(0, 8, size=face.shape), None, 3 * face + 40]
    candidates.append(face + rng.normal(0, 2, size=face.shape))
    assert motion.best_frame_index(face, candidates) == 2
    assert motion.best_frame_index(face, [None, None]) == 0
    np.testing.assert_allclose(
        motion.normalized_landmarks(3 * face + 40), motion.normalized_landmarks(face), atol=1e-9
    )


def test_channels_last_changes_layout_not_values(animator) -> None:
    source, driving = frames(1, seed=2)[0], frames(5)
    conv = animator.generator.first.conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    fast = animator.animate(source, driving, batch_size=5)
    plain = FOMMAnimator(animator.networks, resolution=64, channels_last=False)
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    slow = plain.animate(source, driving, batch_size=1, reuse_source=False)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)
    animator.to("cpu")  # back to channels-last for the other tests
    assert animator.channels_last and conv.is_contiguous(memory_format=torch.channels_last)


def test_mixed_precision_type_per_device(monkeypatch) -> None:
    assert motion.autocast_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(motion, "cpu_bf16_supported", lambda: False)
    assert motion.autocast_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(motion, "cpu_bf16_supported", lambda: True)
    assert motion.autocast_dtype(torch.device("cpu")) == torch.bfloat16


def test_cpu_mixed_precision_is_bf16_close_to_fp32_or_exactly_fp32(animator) -> None:
    source, driving = frames(1, seed=3)[0], frames(4)
    exact = animator.animate(source, driving)
    mixed = animator.animate(source, driving, amp=True)
    assert mixed.dtype == torch.float32
    if motion.cpu_bf16_supported():
        assert not torch.equal(mixed, exact)
        mse = float(((mixed - exact) ** 2).mean())
        assert 10 * math.log10(1 / mse) > 40
    else:  # emulated bf16 would be slower: fp32 stays
        assert torch.equal(mixed, exact)
