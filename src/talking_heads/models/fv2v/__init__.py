"""face-vid2vid (Wang et al., CVPR 2021), as the zhanglonghao1992 implementation builds it."""
