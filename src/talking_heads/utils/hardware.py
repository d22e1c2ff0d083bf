"""What the machine offers, asked without importing torch (the Snakefile asks at DAG time)."""

from __future__ import annotations

from pathlib import Path

#: present while an NVIDIA kernel driver is loaded
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


def has_nvidia_driver() -> bool:
    """Whether an NVIDIA driver is loaded on this machine (so CUDA may be used)."""
    return NVIDIA_DRIVER.is_file()
