"""FOMM training as a LightningModule (first-order-model ``train.py`` and ``modules/model.py``).

Losses as upstream's ``GeneratorFullModel`` / ``DiscriminatorFullModel``: multi-scale VGG19
perceptual loss on an anti-aliased image pyramid, LSGAN generator loss with discriminator
feature matching (computed only when ``generator_gan`` ≠ 0), and keypoint equivariance of the
values and Jacobians under a random affine + TPS warp. Optimisation as upstream: Adam
(β = 0.5, 0.999), learning rates per network, MultiStepLR per epoch on ``epoch_milestones``,
the discriminator stepped only when ``generator_gan`` ≠ 0.

Deviation: the generator and keypoint detector share one Adam with two parameter groups
(upstream has two Adams with identical settings; Adam is element-wise, so the updates are
the same) so that Lightning's ``global_step`` counts training iterations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from talking_heads.models.fomm.networks import build_networks
from talking_heads.models.motion.blocks import ImagePyramide, Transform, Vgg19, detach_kp


def load_vgg19(perceptual_pretrained: bool | str | Path) -> Vgg19:
    """VGG19 from the weights directory (sha256-checked), or random when ``False``."""
    if perceptual_pretrained is False or perceptual_pretrained is None:
        return Vgg19(weights=None)
    from talking_heads import weights

    if perceptual_pretrained is True:
        path = weights.resolve("vgg19")
    else:
        path = Path(perceptual_pretrained)
        if not path.is_file():
            spec = weights.WEIGHTS.get("vgg19")
            raise weights.MissingWeightsError(
                f"VGG19 weights for the perceptual loss not found at {path}. Download "
                f"{spec.filename} from {spec.url} into {weights.weights_dir()}/, or set "
                "model.perceptual_pretrained=false to train with random VGG features."
            )
    spec = weights.WEIGHTS.get("vgg19")
    return Vgg19(weights.load_state_dict(path, sha256=spec.sha256))


class FOMMLightning(pl.LightningModule):
    """FOMM: keypoint detector + occlusion-aware generator (+ discriminator) trained jointly."""

    def __init__(
        self,
        model_params: dict,
        train_params: dict,
        perceptual_pretrained: bool | str = False,
        resolution: int = 256,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.kp_detector, self.generator, self.discriminator = build_networks(model_params)
        self.loss_weights = train_params["loss_weights"]
        self.scales = train_params["scales"]
        self.pyramid = ImagePyramide(self.scales, self.generator.num_channels)
        # the frozen VGG is kept out of the module tree: it is not part of FOMM's weights
        # and would add 80 MB to every checkpoint
        self._vgg = (
            [load_vgg19(perceptual_pretrained)] if sum(self.loss_weights["perceptual"]) else []
        )

    @property
    def vgg(self) -> Vgg19 | None:
        """The perceptual-loss network, on this module's device."""
        if not self._vgg:
            return None
        if self._vgg[0].mean.device != self.device:
            self._vgg[0] = self._vgg[0].to(self.device)
        return self._vgg[0]

    # -- losses ---------------------------------------------------------------------------
    def generator_losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Upstream's GeneratorFullModel.forward."""
        source, driving = batch["source"], batch["driving"]
        kp_source = self.kp_detector(source)
        kp_driving = self.kp_detector(driving)
        generated = self.generator(source, kp_source=kp_source, kp_driving=kp_driving)
        generated.update({"kp_source": kp_source, "kp_driving": kp_driving})
        weights = self.loss_weights
        losses: dict[str, torch.Tensor] = {}
        real = self.pyramid(driving)
        fake = self.pyramid(generated["prediction"])
        vgg = self.vgg
        if vgg is not None:
            total = 0.0
            for scale in self.scales:
                x_vgg = vgg(fake[f"prediction_{scale}"])
                y_vgg = vgg(real[f"prediction_{scale}"])
                for i, weight in enumerate(weights["perceptual"]):
                    total = total + weight * torch.abs(x_vgg[i] - y_vgg[i].detach()).mean()
            losses["perceptual"] = total
        if weights["generator_gan"] != 0:
            maps_fake = self.discriminator(fake, kp=detach_kp(kp_driving))
            maps_real = self.discriminator(real, kp=detach_kp(kp_driving))
            total = 0.0
            for scale in self.discriminator.scales:
                total = (
                    total
                    + weights["generator_gan"]
                    * ((1 - maps_fake[f"prediction_map_{scale}"]) ** 2).mean()
                )
            losses["gen_gan"] = total
            if sum(weights["feature_matching"]) != 0:
                total = 0.0
                for scale in self.discriminator.scales:
                    pairs = zip(
                        maps_real[f"feature_maps_{scale}"],
                        maps_fake[f"feature_maps_{scale}"],
                        strict=True,
                    )
                    for i, (a, b) in enumerate(pairs):
                        if weights["feature_matching"][i]:
                            total = total + weights["feature_matching"][i] * torch.abs(a - b).mean()
                losses["feature_matching"] = total
        if weights["equivariance_value"] + weights["equivariance_jacobian"] != 0:
            transform = Transform(
                driving.shape[0],
                device=driving.device,
                **self.hparams.train_params["transform_params"],
            )
            transformed_frame = transform.transform_frame(driving)
            transformed_kp = self.kp_detector(transformed_frame)
            if weights["equivariance_value"] != 0:
                value = torch.abs(
                    kp_driving["value"] - transform.warp_coordinates(transformed_kp["value"])
                ).mean()
                losses["equivariance_value"] = weights["equivariance_value"] * value
            if weights["equivariance_jacobian"] != 0:
                jacobian_transformed = torch.matmul(
                    transform.jacobian(transformed_kp["value"]), transformed_kp["jacobian"]
                )
                value = torch.matmul(torch.inverse(kp_driving["jacobian"]), jacobian_transformed)
                eye = torch.eye(2, dtype=value.dtype, device=value.device).view(1, 1, 2, 2)
                losses["equivariance_jacobian"] = (
                    weights["equivariance_jacobian"] * torch.abs(eye - value).mean()
                )
        return losses, generated

    def discriminator_losses(
        self, batch: dict[str, torch.Tensor], generated: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """Upstream's DiscriminatorFullModel.forward (LSGAN)."""
        real = self.pyramid(batch["driving"])
        fake = self.pyramid(generated["prediction"].detach())
        kp = detach_kp(generated["kp_driving"])
        maps_fake = self.discriminator(fake, kp=kp)
        maps_real = self.discriminator(real, kp=kp)
        total = 0.0
        for scale in self.discriminator.scales:
            key = f"prediction_map_{scale}"
            value = (1 - maps_real[key]) ** 2 + maps_fake[key] ** 2
            total = total + self.loss_weights["discriminator_gan"] * value.mean()
        return {"disc_gan": total}

    # -- Lightning hooks ------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        opt_generator, opt_discriminator = self.optimizers()
        losses, generated = self.generator_losses(batch)
        loss = sum(losses.values())
        opt_generator.zero_grad()
        self.manual_backward(loss)
        opt_generator.step()
        if self.loss_weights["generator_gan"] != 0:
            disc_losses = self.discriminator_losses(batch, generated)
            opt_discriminator.zero_grad()
            self.manual_backward(sum(disc_losses.values()))
            opt_discriminator.step()
            losses.update(disc_losses)
        bs = batch["source"].shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=bs)
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        return loss.detach()

    def on_train_epoch_end(self) -> None:
        scheduler_generator, scheduler_discriminator = self.lr_schedulers()
        scheduler_generator.step()
        if self.loss_weights["generator_gan"] != 0:  # its optimiser never steps otherwise
            scheduler_discriminator.step()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        kp_source = self.kp_detector(batch["source"])
        kp_driving = self.kp_detector(batch["driving"])
        prediction = self.generator(batch["source"], kp_source=kp_source, kp_driving=kp_driving)[
            "prediction"
        ]
        l1 = torch.abs(prediction - batch["driving"]).mean()
        self.log("val/l1", l1, prog_bar=True, batch_size=batch["source"].shape[0])
        return l1

    def configure_optimizers(self):
        tp = self.hparams.train_params
        betas = (0.5, 0.999)
        opt_generator = torch.optim.Adam(
            [
                {"params": self.generator.parameters(), "lr": tp["lr_generator"]},
                {"params": self.kp_detector.parameters(), "lr": tp["lr_kp_detector"]},
            ],
            betas=betas,
        )
        opt_discriminator = torch.optim.Adam(
            self.discriminator.parameters(), lr=tp["lr_discriminator"], betas=betas
        )
        milestones = list(tp["epoch_milestones"])
        schedulers = [
            torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
            for opt in (opt_generator, opt_discriminator)
        ]
        return [opt_generator, opt_discriminator], schedulers
