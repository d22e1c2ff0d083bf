"""Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022)."""
