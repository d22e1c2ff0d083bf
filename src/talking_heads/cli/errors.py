"""The command line's one error boundary, shared by ``talking-heads`` and ``talking-heads-train``.

A failure caused by the user's input (a wrong file, name or value) ends with exit status 2 and
one line on stderr, ``<prog>: error: <message>``, without a traceback unless debugging is
asked for (``talking-heads --debug``, ``TALKING_HEADS_DEBUG=1``). Any other exception is a bug:
it propagates, so Python prints its traceback and the exit status is 1.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from talking_heads.errors import UserError

#: exit status of a user error (argparse's own, for a wrong command line)
USER_ERROR_STATUS = 2
#: set to 1 to see the traceback of a user error of ``talking-heads-train``
DEBUG_ENV = "TALKING_HEADS_DEBUG"

#: built-in exceptions that mean a wrong input: a missing input file, an unwritable output
#: path, a wrong value (library errors such as ``ConfigError`` derive from these)
BUILTIN_USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    ValueError,
)
#: library exceptions that mean a wrong input, as (module, class); looked up only once their
#: module is imported (nothing else can raise them), so the boundary imports no torch
NAMED_USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("talking_heads.config", "ConfigError"),
    ("talking_heads.weights", "MissingWeightsError"),
    ("talking_heads.weights", "ChecksumMismatchError"),
    ("talking_heads.models.checkpoints", "CheckpointLayoutError"),
)
#: Hydra's exceptions about the command line's overrides (``talking-heads-train``)
HYDRA_USER_ERRORS: tuple[str, ...] = (
    "ConfigCompositionException",
    "MissingConfigException",
    "OverrideParseException",
)


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception class that is the user's, of the modules imported so far."""
    named = tuple(
        getattr(sys.modules[module], name)
        for module, name in NAMED_USER_ERRORS
        if hasattr(sys.modules.get(module), name)
    )
    return BUILTIN_USER_ERRORS + named


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` was caused by the user's input rather than by a bug.

    A ``KeyError`` is the user's when it carries a sentence (the registries' ``unknown method
    'x'; known methods: ...``); a bare missing dictionary key is a bug.
    """
    if isinstance(error, KeyError):
        return len(error.args) == 1 and isinstance(error.args[0], str) and " " in error.args[0]
    return isinstance(error, user_error_types())


def one_line(text: str) -> str:
    """``text`` folded to one line: lines joined with ``; `` (a space after a full stop), an
    indented list after a line ending in ``:`` joined with ``, ``."""
    out = ""
    in_list = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        indented = raw[:1].isspace()
        if not out:
            out = line
        elif out.endswith(":"):
            out += " " + line
            in_list = indented
            continue
        elif in_list and indented:
            out += ", " + line
            continue
        else:
            out += (" " if out.endswith((".", "!", "?", ";")) else "; ") + line
        in_list = False
    return out


def error_message(error: BaseException) -> str:
    """The one-line message of a user error (an ``OSError`` as ``<file>: <reason>``)."""
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    elif isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
        if error.filename2 is not None:
            text += f" ({error.filename2})"
    else:
        text = str(error) or type(error).__name__
    if type(error).__module__ == "hydra.errors":  # Hydra lists its config search path last
        text = text.split("\nConfig search path:", 1)[0]
    return one_line(text) or type(error).__name__


def report(error: BaseException, prog: str, *, debug: bool = False) -> int:
    """Print ``error`` as ``<prog>: error: <message>`` (after its traceback when ``debug``);
    return the exit status of a user error."""
    if debug:
        traceback.print_exception(error)
    print(f"{prog}: error: {error_message(error)}", file=sys.stderr)
    return USER_ERROR_STATUS


def guard(prog: str, func: Callable[[], Any], *, debug: bool = False) -> int:
    """``func()``'s exit status (``None`` is 0); a user error is reported in one line
    (:func:`report`) and gives status 2; any other exception propagates."""
    try:
        return int(func() or 0)
    except Exception as error:
        if not is_user_error(error):
            raise
        return report(error, prog, debug=debug)


def _hydra_user_error(error: BaseException) -> BaseException | None:
    """The user error behind an exception raised through Hydra, else ``None``."""
    if is_user_error(error):
        return error
    hydra_errors = sys.modules.get("hydra.errors")
    if hydra_errors is None:
        return None
    if isinstance(error, hydra_errors.InstantiationException):
        cause = error.__cause__
        return cause if cause is not None and is_user_error(cause) else None
    names = {cls.__name__ for cls in type(error).__mro__ if cls.__module__ == "hydra.errors"}
    return error if names & set(HYDRA_USER_ERRORS) else None


def check_experiment_overrides(overrides: Sequence[str]) -> None:
    """An ``experiment=<name>`` override naming no ``configs/experiment/<name>.yaml`` is a
    ``ConfigError`` listing the known experiments (before Hydra reports it its own way)."""
    from talking_heads.config import compose_experiment, config_names

    for override in overrides:
        match = re.fullmatch(r"\+{0,2}experiment=(.*)", override)
        if match and match.group(1) not in ("null", *config_names("experiment")):
            compose_experiment(match.group(1))  # raises the unknown-experiment error


def training_debug() -> bool:
    """Whether ``TALKING_HEADS_DEBUG`` asks for the traceback of user errors."""
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


@contextmanager
def exit_on_user_error(prog: str) -> Iterator[None]:
    """Inside a ``@hydra.main`` function: a user error raised in the block is reported in one
    line and ends the process with status 2 (``SystemExit`` passes through Hydra, which would
    otherwise print its own report); any other exception propagates."""
    try:
        yield
    except Exception as error:
        user_error = _hydra_user_error(error)
        if user_error is None:
            raise
        raise SystemExit(report(user_error, prog, debug=training_debug())) from None


def run_hydra(task: Callable[[], Any], prog: str) -> int:
    """Run a ``@hydra.main`` function inside the boundary; return the exit status.

    The command line is checked first (:func:`check_experiment_overrides`); Hydra is told to
    raise instead of printing its own report (``HYDRA_FULL_ERROR``), so an error in composing
    the config reaches the boundary (the function itself guards its body with
    :func:`exit_on_user_error`). ``--debug`` (removed before Hydra parses the command line)
    or ``TALKING_HEADS_DEBUG=1`` shows the traceback.
    """
    saved = {name: os.environ.get(name) for name in ("HYDRA_FULL_ERROR", DEBUG_ENV)}
    if "--debug" in sys.argv[1:]:
        sys.argv.remove("--debug")
        os.environ[DEBUG_ENV] = "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with exit_on_user_error(prog):
            check_experiment_overrides([a for a in sys.argv[1:] if not a.startswith("-")])
            task()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return 0
