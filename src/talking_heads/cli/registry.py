"""``talking-heads list``: the names of a registry."""

from __future__ import annotations

import argparse
from typing import Any

REGISTRIES = ("methods", "families", "metrics", "recipes", "tables")


def _list_methods(args: argparse.Namespace) -> None:
    from talking_heads.models import METHODS

    for name in METHODS.names():
        spec = METHODS.get(name)
        print(f"{name}\t{spec.survey_name}\t{spec.family}\t{spec.default_experiment}")
        declaration = spec.declaration
        if args.inputs:
            for item in declaration.inputs:
                need = "required" if item.required else "optional"
                print(f"  --{item.kind} ({need})")
        if args.options:
            for option in declaration.options:
                choices = f" {{{', '.join(map(str, option.choices))}}}" if option.choices else ""
                print(f"  --option {option.name}={option.default}{choices}: {option.help}")


def _list_families(args: argparse.Namespace) -> None:
    from talking_heads.models import METHODS
    from talking_heads.models.interface import FAMILIES

    for name in FAMILIES.names():
        family = FAMILIES.get(name)
        inputs = ", ".join(f"--{i.kind}" if i.required else f"[--{i.kind}]" for i in family.inputs)
        members = [m for m in METHODS.names() if METHODS.get(m).family == name]
        print(f"{name}\t{family.table}\t{inputs}\t{', '.join(members) or '-'}")


def _cmd_list_registry(args: argparse.Namespace) -> None:
    if args.registry == "methods":
        _list_methods(args)
    elif args.registry == "families":
        _list_families(args)
    elif args.registry == "metrics":
        from talking_heads.metrics import METRICS

        for name in METRICS.names():
            print(f"{name}\t{METRICS.get(name).reference}")
    elif args.registry == "recipes":
        from talking_heads.preprocess.recipes import RECIPES

        print("\n".join(RECIPES.names()))
    elif args.registry == "tables":
        from talking_heads.report import TABLES

        print("\n".join(TABLES.names()))


def register(subparsers: Any) -> None:
    """Add ``list methods|families|metrics|recipes|tables``."""
    p = subparsers.add_parser("list", help="list a registry: " + ", ".join(REGISTRIES))
    p.add_argument("registry", choices=REGISTRIES)
    p.add_argument("--inputs", action="store_true", help="methods: the inputs each declares")
    p.add_argument("--options", action="store_true", help="methods: the options each declares")
    p.set_defaults(func=_cmd_list_registry)
