"""Upstream's ``model_params``, transcribed from each official repository's YAML, as reference
values: the tests assert that ``configs/model/*.yaml`` (the one source the package reads)
holds them."""

import copy
from typing import Any

#: ``model_params`` of first-order-model's ``config/vox-256.yaml`` (vox-cpk.pth.tar).
FOMM_VOX256: dict = {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "kp_detector_params": {
        "temperature": 0.1,
        "block_expansion": 32,
        "max_features": 1024,
        "scale_factor": 0.25,
        "num_blocks": 5,
    },
    "generator_params": {
        "block_expansion": 64,
        "max_features": 512,
        "num_down_blocks": 2,
        "num_bottleneck_blocks": 6,
        "estimate_occlusion_map": True,
        "dense_motion_params": {
            "block_expansion": 64,
            "max_features": 1024,
            "num_blocks": 5,
            "scale_factor": 0.25,
        },
    },
    "discriminator_params": {
        "scales": [1],
        "block_expansion": 32,
        "max_features": 512,
        "num_blocks": 4,
        "sn": True,
    },
}

#: ``model_params`` of CVPR2022-DaGAN's ``config/vox-adv-256.yaml`` as the README trains and
#: runs it (``--kp_num 15 --rgbd --generator DepthAwareGenerator``), plus ``depth_params``: the
#: depth network of ``demo.py`` (ResNet-18, ``depth/models/weights_19``). The keypoint detector
#: and generator settings are FOMM's vox-256 ones.
DAGAN_VOX256: dict[str, Any] = {
    **copy.deepcopy(FOMM_VOX256),
    "common_params": {"num_kp": 15, "num_channels": 3, "estimate_jacobian": True},
    "discriminator_params": {
        "scales": [1],
        "block_expansion": 32,
        "max_features": 512,
        "num_blocks": 4,
        "use_kp": True,
    },
    "depth_params": {"num_layers": 18},
}

#: ``model_params`` of the official ``config/vox-256.yaml`` (the Vox-256-New checkpoint).
FV2V_VOX256: dict = {
    "common_params": {
        "num_kp": 15,
        "image_channel": 3,
        "feature_channel": 32,
        "estimate_jacobian": False,
    },
    "kp_detector_params": {
        "temperature": 0.1,
        "block_expansion": 32,
        "max_features": 1024,
        "scale_factor": 0.25,
        "num_blocks": 5,
        "reshape_channel": 16384,
        "reshape_depth": 16,
    },
    "he_estimator_params": {"block_expansion": 64, "max_features": 2048, "num_bins": 66},
    "generator_params": {
        "block_expansion": 64,
        "max_features": 512,
        "num_down_blocks": 2,
        "reshape_channel": 32,
        "reshape_depth": 16,
        "num_resblocks": 6,
        "estimate_occlusion_map": True,
        "dense_motion_params": {
            "block_expansion": 32,
            "max_features": 1024,
            "num_blocks": 5,
            "reshape_depth": 16,
            "compress": 4,
        },
    },
    "discriminator_params": {
        "scales": [1],
        "block_expansion": 32,
        "max_features": 512,
        "num_blocks": 4,
        "sn": True,
    },
}

#: ``model_params`` of articulated-animation's ``config/vox256.yaml`` (vox256.pth).
MRAA_VOX256: dict = {
    "num_regions": 10,
    "num_channels": 3,
    "estimate_affine": True,
    "revert_axis_swap": True,
    "bg_predictor_params": {
        "block_expansion": 32,
        "max_features": 1024,
        "num_blocks": 5,
        "bg_type": "affine",
    },
    "region_predictor_params": {
        "temperature": 0.1,
        "block_expansion": 32,
        "max_features": 1024,
        "scale_factor": 0.25,
        "num_blocks": 5,
        "pca_based": True,
        "fast_svd": False,
    },
    "generator_params": {
        "block_expansion": 64,
        "max_features": 512,
        "num_down_blocks": 2,
        "num_bottleneck_blocks": 6,
        "skips": True,
        "pixelwise_flow_predictor_params": {
            "block_expansion": 64,
            "max_features": 1024,
            "num_blocks": 5,
            "scale_factor": 0.25,
            "use_deformed_source": True,
            "use_covar_heatmap": True,
            "estimate_occlusion_map": True,
        },
    },
    "avd_network_params": {"id_bottle_size": 64, "pose_bottle_size": 64},
}

#: ``model_params`` of Thin-Plate-Spline-Motion-Model's ``config/vox-256.yaml`` (vox.pth.tar).
TPSM_VOX256: dict = {
    "common_params": {"num_tps": 10, "num_channels": 3, "bg": True, "multi_mask": True},
    "generator_params": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 3},
    "dense_motion_params": {
        "block_expansion": 64,
        "max_features": 1024,
        "num_blocks": 5,
        "scale_factor": 0.25,
    },
    "avd_network_params": {"id_bottle_size": 128, "pose_bottle_size": 128},
}
