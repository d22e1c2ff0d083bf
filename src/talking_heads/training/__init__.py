"""Training: Lightning data modules and the Hydra entry point."""
