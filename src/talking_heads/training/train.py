"""Hydra entry point: ``talking-heads-train experiment=fomm_demo hydra.run.dir=...``.

Composes ``configs/train.yaml`` (lightning-hydra-template layout), instantiates the data
module, the method's LightningModule, callbacks, loggers and trainer, and fits. An existing
``<output_dir>/checkpoints/last.ckpt`` is resumed automatically, so re-running an interrupted
Snakemake job continues from its last checkpoint. With ``export_path`` set, the final
weights are copied there atomically (the Snakemake rule's declared output).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from talking_heads.config import experiment_model_config, find_config_dir
from talking_heads.utils.atomic import atomic_path, atomic_write_json

__all__ = ["experiment_model_config", "find_config_dir", "main", "train"]

log = logging.getLogger(__name__)


def _wandb_offline() -> bool:
    """wandb runs offline unless an API key is configured (``WANDB_API_KEY``)."""
    return not os.environ.get("WANDB_API_KEY")


if not OmegaConf.has_resolver("wandb_offline"):
    OmegaConf.register_new_resolver("wandb_offline", _wandb_offline)


def _instantiate_dict(section: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group dict that has a ``_target_``."""
    if not section:
        return []
    return [
        hydra.utils.instantiate(item)
        for item in section.values()
        if isinstance(item, DictConfig) and "_target_" in item
    ]


def checkpoint_step(path: Path) -> int:
    """The ``global_step`` stored in a Lightning checkpoint."""
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def method_of_module(target: str) -> str | None:
    """The registered method whose Lightning module is ``target`` (a ``_target_`` path)."""
    from talking_heads.models import METHODS

    for name in METHODS.names():
        if METHODS.get(name).lightning_module == target:
            return name
    return None


def export_checkpoint(last: Path, out: Path, method: str | None) -> Path:
    """``last`` copied to ``out`` atomically, with the method it belongs to recorded."""
    import torch

    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    if method is not None:
        checkpoint["method"] = method
    with atomic_path(out) as tmp:
        torch.save(checkpoint, tmp)
    return out


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the configured model; return a summary (resume point, final step, metrics)."""
    import warnings

    import pytorch_lightning as pl

    # manual-optimisation methods checkpoint the post-step state, which is what resuming needs
    warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")

    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    checkpoint_dir = output_dir / "checkpoints"

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is None and cfg.get("resume", True) and (checkpoint_dir / "last.ckpt").is_file():
        ckpt_path = str(checkpoint_dir / "last.ckpt")
    resumed_step = checkpoint_step(Path(ckpt_path)) if ckpt_path else 0
    if ckpt_path:
        log.info("Resuming from %s at global step %d", ckpt_path, resumed_step)

    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    callbacks = _instantiate_dict(cfg.get("callbacks"))
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False
    )
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path)

    last = checkpoint_dir / "last.ckpt"
    if not last.is_file():
        trainer.save_checkpoint(last)
    summary = {
        "experiment": cfg.get("task_name"),
        "resumed_from": ckpt_path,
        "resumed_global_step": resumed_step,
        "final_global_step": int(trainer.global_step),
        "final_checkpoint": str(last),
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
    }
    atomic_write_json(output_dir / "train_summary.json", summary)
    if cfg.get("export_path"):
        export_checkpoint(last, Path(cfg.export_path), method_of_module(cfg.model._target_))
        log.info("exported %s -> %s", last, cfg.export_path)
    for lg in loggers:
        lg.finalize("success")
    return summary


@hydra.main(version_base="1.3", config_path=str(find_config_dir()), config_name="train.yaml")
def hydra_main(cfg: DictConfig) -> None:
    """Hydra-decorated entry point: the config composed from the command line, trained."""
    from talking_heads.cli.errors import exit_on_user_error

    with exit_on_user_error("talking-heads-train"):
        train(cfg)


def main() -> None:
    """Console script ``talking-heads-train``: :func:`hydra_main` inside the command line's
    error boundary (a mistake in the input, e.g. an unknown experiment, is one line on stderr
    and exit status 2; ``--debug`` or ``TALKING_HEADS_DEBUG=1`` adds its traceback)."""
    from talking_heads.cli.errors import run_hydra

    raise SystemExit(run_hydra(hydra_main, "talking-heads-train"))


if __name__ == "__main__":
    main()
