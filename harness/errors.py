"""One exception family for every bad input the user can fix.

The CLI prints ``error: <message>`` for these (no traceback unless ``--debug``) and exits with
code 2. Each message names the place: a recipe key path (``training.lr``) or ``file:line``.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Callable


class HarnessError(Exception):
    """A problem with the user's input (recipe, data, paths), reported without a traceback."""

    exit_code = 2


class RecipeError(HarnessError):
    """The recipe is malformed: unknown key, wrong type, missing key, bad component."""


class DataError(HarnessError):
    """A data file or row is unusable; the message names ``file:line``."""


class TrainingError(HarnessError):
    """Training cannot go on (for example a non-finite loss); checkpoints already written are kept."""

    exit_code = 3


class Interrupted(HarnessError):
    """A signal (SIGINT, SIGTERM) stopped the run; the exit code is the shell's 128 + the signal number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


def _terminated(signum, frame):
    raise Interrupted(f"terminated ({signal.Signals(signum).name})", signum)


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    return ((str(error).strip().splitlines() or [type(error).__name__])[0])[:limit]


def is_main_process() -> bool:
    """The first process of a launch, or the only one (from the environment: usable before Accelerate)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("RANK", "0") == "0"


def where(path: str, line: int | None = None) -> str:
    """``file:line`` for messages (1-based line numbers, as editors show them)."""
    return f"{path}:{line}" if line is not None else str(path)


def report_errors(fn: Callable[[], int], debug: bool = False) -> int:
    """Run a command; turn a failure into one ``error:`` line (only on the main process of a
    multi-process launch) and an exit code. ``debug`` re-raises to show the traceback."""
    main_process = is_main_process()
    try:  # SIGTERM (what `kill` and job schedulers send) ends a command like SIGINT: one line, an exit code
        signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread
        pass
    try:
        return fn()
    except HarnessError as e:
        if debug:
            raise
        if main_process:
            print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `harness recipes | head -1`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more is written when Python flushes stdout at exit
        return 0
    except Exception as e:  # a library failure: one line, the traceback with --debug
        if debug:
            raise
        if main_process:
            print(f"error: {type(e).__name__}: {first_line(e, limit=2000)} (run with --debug for the traceback)",
                  file=sys.stderr)
        return 1
