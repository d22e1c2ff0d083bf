"""Method registry: every talking-head method is one module, one config and one line here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talking_heads.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    """A method: its Lightning module, its inference animator and the survey's name for it."""

    name: str
    survey_name: str
    family: str
    lightning_module: str
    animator: str
    default_experiment: str
    importer: str = ""

    def import_official(
        self, official: Path | str, out: Path | str, experiment: str | None = None
    ) -> Path:
        """Convert the authors' released checkpoint ``official`` into ours at ``out``, with the
        model configuration of ``experiment`` (default: the method's default experiment)."""
        if not self.importer:
            raise NotImplementedError(f"no importer of official {self.name} checkpoints yet")
        from talking_heads.training.train import experiment_model_config

        model_cfg = experiment_model_config(experiment or self.default_experiment)
        return _import(self.importer)(official, out, model_cfg)

    def animator_class(self) -> Any:
        """The method's animator class (a ``MotionAnimator`` for the motion-transfer family)."""
        return _import(self.animator)

    def load_animator(self, checkpoint: Path | str, device: str = "cpu") -> Any:
        """Build the method's animator from one of our checkpoints."""
        return self.animator_class().from_checkpoint(checkpoint, map_location=device)


def _import(dotted: str) -> Any:
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


METHODS: Registry[MethodSpec] = Registry("method")
METHODS.add(
    "fomm",
    MethodSpec(
        name="fomm",
        survey_name="FOMM",
        family="motion-transfer",
        lightning_module="talking_heads.models.fomm.module.FOMMLightning",
        animator="talking_heads.models.fomm.animate.FOMMAnimator",
        default_experiment="fomm_vox256",
        importer="talking_heads.models.fomm.checkpoint.import_official",
    ),
)
METHODS.add(
    "mraa",
    MethodSpec(
        name="mraa",
        survey_name="MRAA",
        family="motion-transfer",
        lightning_module="talking_heads.models.mraa.module.MRAALightning",
        animator="talking_heads.models.mraa.animate.MRAAAnimator",
        default_experiment="mraa_vox256",
        importer="talking_heads.models.mraa.checkpoint.import_official",
    ),
)
METHODS.add(
    "tpsm",
    MethodSpec(
        name="tpsm",
        survey_name="TPSM",
        family="motion-transfer",
        lightning_module="talking_heads.models.tpsm.module.TPSMLightning",
        animator="talking_heads.models.tpsm.animate.TPSMAnimator",
        default_experiment="tpsm_vox256",
        importer="talking_heads.models.tpsm.checkpoint.import_official",
    ),
)
METHODS.add(
    "dagan",
    MethodSpec(
        name="dagan",
        survey_name="DaGAN",
        family="motion-transfer",
        lightning_module="talking_heads.models.dagan.module.DaGANLightning",
        animator="talking_heads.models.dagan.animate.DaGANAnimator",
        default_experiment="dagan_vox256",
        importer="talking_heads.models.dagan.checkpoint.import_official",
    ),
)
METHODS.add(
    "fv2v",
    MethodSpec(
        name="fv2v",
        survey_name="Face vid2vid",
        family="motion-transfer",
        lightning_module="talking_heads.models.fv2v.module.FV2VLightning",
        animator="talking_heads.models.fv2v.animate.FV2VAnimator",
        default_experiment="fv2v_vox256",
        importer="talking_heads.models.fv2v.checkpoint.import_official",
    ),
)
