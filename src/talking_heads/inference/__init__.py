"""Inference: animate a source portrait with a driving video, and protocol runners."""
