"""Argument helpers shared by the command groups."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

__all__ = ["check_output", "parse_mirror", "parse_param"]


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (numbers, booleans, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, yaml.safe_load(value)


def parse_mirror(text: str) -> tuple[str, str]:
    """``key=url`` (a dataset URL base override)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=URL, got {text!r}")
    return key, value


def check_output(path: Path) -> Path:
    """``path`` if it can be written, checked before a long run (nothing is created)."""
    from talking_heads.utils.atomic import check_writable

    return check_writable(path)
