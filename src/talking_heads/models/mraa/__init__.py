"""Motion Representations for Articulated Animation (Siarohin et al., CVPR 2021)."""
