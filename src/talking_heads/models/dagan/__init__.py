"""DaGAN: Depth-Aware Generative Adversarial Network for talking heads (Hong et al., CVPR 2022)."""
