"""Method registry: every talking-head method is one module, one config and one line here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talking_heads.errors import UserError
from talking_heads.models.interface import (
    FAMILIES,
    Family,
    MethodDeclaration,
    MethodInput,
    MethodOption,
)
from talking_heads.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    """A method: its family and declared inputs/options, its Lightning module, its generator
    (inference object, a :class:`~talking_heads.models.interface.Generator`), its experiments
    and the importer of its official checkpoint.

    ``inputs``/``options`` add to (or, for inputs, replace) the family's declaration; the
    report table defaults to the family's.
    """

    name: str
    survey_name: str
    family: str
    lightning_module: str
    generator: str
    default_experiment: str
    importer: str = ""
    inputs: tuple[MethodInput, ...] | None = None
    options: tuple[MethodOption, ...] = ()
    table: str | None = None

    @property
    def family_spec(self) -> Family:
        return FAMILIES.get(self.family)

    @property
    def declaration(self) -> MethodDeclaration:
        """What the method consumes and which options it offers."""
        family = self.family_spec
        inputs = self.inputs if self.inputs is not None else family.inputs
        return MethodDeclaration(family, tuple(inputs), (*family.options, *self.options))

    @property
    def report_table(self) -> str:
        """The survey table this method's rows go to (its family's unless it says otherwise)."""
        return self.table or self.family_spec.table

    @property
    def demo_experiment(self) -> str:
        """The experiment the embedded demo trains."""
        return f"{self.name}_demo"

    def import_official(
        self, official: Path | str, out: Path | str, experiment: str | None = None
    ) -> Path:
        """Convert the authors' released checkpoint ``official`` into ours at ``out``, with the
        model configuration of ``experiment`` (default: the method's default experiment)."""
        if not self.importer:
            raise UserError(f"{self.name} has no importer of official checkpoints")
        from talking_heads.config import experiment_model_config
        from talking_heads.models.checkpoints import (
            CheckpointLayoutError,
            explain_foreign_official,
        )

        model_cfg = experiment_model_config(experiment or self.default_experiment)
        try:
            return _import(self.importer)(official, out, model_cfg)
        except CheckpointLayoutError as error:  # another method's file: say whose it is
            foreign = explain_foreign_official(official, self.name)
            if foreign is None:
                raise
            raise foreign from error

    def generator_class(self) -> Any:
        """The method's :class:`~talking_heads.models.interface.Generator` class."""
        return _import(self.generator)

    def load_generator(self, checkpoint: Path | str, device: str = "cpu") -> Any:
        """Build the method's generator from one of our checkpoints (checked first)."""
        from talking_heads.models.checkpoints import check_checkpoint

        check_checkpoint(checkpoint, self.name)
        return self.generator_class().from_checkpoint(checkpoint, map_location=device)


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
        generator="talking_heads.models.fomm.animate.FOMMAnimator",
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
        generator="talking_heads.models.mraa.animate.MRAAAnimator",
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
        generator="talking_heads.models.tpsm.animate.TPSMAnimator",
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
        generator="talking_heads.models.dagan.animate.DaGANAnimator",
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
        generator="talking_heads.models.fv2v.animate.FV2VAnimator",
        default_experiment="fv2v_vox256",
        importer="talking_heads.models.fv2v.checkpoint.import_official",
    ),
)
METHODS.add(
    "wav2lip",
    MethodSpec(
        name="wav2lip",
        survey_name="Wav2Lip",
        family="lip-sync",
        lightning_module="talking_heads.models.wav2lip.module.Wav2LipLightning",
        generator="talking_heads.models.wav2lip.generate.Wav2LipGenerator",
        default_experiment="wav2lip_lrs2",
        importer="talking_heads.models.wav2lip.checkpoint.import_official",
        inputs=(MethodInput("face"), MethodInput("audio")),
    ),
)
METHODS.add(
    "lipgan",
    MethodSpec(
        name="lipgan",
        survey_name="LipGAN",
        family="lip-sync",
        lightning_module="talking_heads.models.lipgan.module.LipGANLightning",
        generator="talking_heads.models.lipgan.generate.LipGANGenerator",
        default_experiment="lipgan_lrs2",
        importer="talking_heads.models.lipgan.checkpoint.import_official",
        inputs=(MethodInput("face"), MethodInput("audio")),
    ),
)
METHODS.add(
    "emogen",
    MethodSpec(
        name="emogen",
        survey_name="EmoGen",
        family="lip-sync",
        lightning_module="talking_heads.models.emogen.module.EmoGenLightning",
        generator="talking_heads.models.emogen.generate.EmoGenGenerator",
        default_experiment="emogen_cremad",
        importer="talking_heads.models.emogen.checkpoint.import_official",
        inputs=(MethodInput("face"), MethodInput("audio"), MethodInput("emotion")),
    ),
)
