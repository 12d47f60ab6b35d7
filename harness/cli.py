"""``harness train|eval|validate|leaderboard ...``.

Bad input (recipe, data, paths) ends with one ``error:`` line naming the place and a non-zero exit
code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from harness.errors import HarnessError, report_errors

TRUST_HELP = ("let a recipe's model.trust_remote_code: true apply: the checkpoint's own Python code runs "
              "(only for checkpoints you trust)")


def allow_remote_code() -> None:
    """The command line's consent to ``model.trust_remote_code: true`` (read by recipe validation)."""
    from harness.config.schema import TRUST_REMOTE_CODE_ENV

    os.environ[TRUST_REMOTE_CODE_ENV] = "1"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("train", "train a recipe, evaluate it, write the report"),
                        ("eval", "evaluate a saved model (model.path=DIR, default output_dir/model)")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("recipe")
        sp.add_argument("overrides", nargs="*", metavar="key.path=value")
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
        sp.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    sp = sub.add_parser("validate", help="validate recipes without touching data or weights")
    sp.add_argument("recipes", nargs="+", help="recipe files, or key.path=value overrides applied to each")
    sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    sp.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    # listed here for `harness --help`; main() hands its arguments to the leaderboard's own parser
    sub.add_parser(
        "leaderboard",
        add_help=False,
        help="train a GLUE recipe on every GLUE task; write glue_submission.zip and leaderboard.md",
    )
    return p


def validate_many(args: list[str], debug: bool = False) -> int:
    from harness.config.loader import load_recipe
    from harness.config.schema import validate

    overrides = [a for a in args if "=" in a and not os.path.exists(a)]
    recipes = [a for a in args if a not in overrides]
    if not recipes:
        print(f"error: no recipe to validate (only overrides: {' '.join(overrides)})", file=sys.stderr)
        return 2
    failed = 0
    for path in recipes:
        try:
            validate(load_recipe(path, overrides))
            print(f"ok: {path}")
        except HarnessError as e:
            if debug:
                raise
            failed += 1
            print(f"error: {path}: {e}", file=sys.stderr)
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((i for i, a in enumerate(argv) if a != "--debug"), None)
    if first is not None and argv[first] == "leaderboard":
        from harness.workflows import glue_leaderboard

        return glue_leaderboard.main(argv[first + 1 :] + (["--debug"] if "--debug" in argv[:first] else []))
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    if getattr(args, "trust_remote_code", False):
        allow_remote_code()

    def command() -> int:
        if args.command == "validate":
            return validate_many(args.recipes, debug)
        # a bad recipe fails here, before the training stack is imported
        from harness.config.loader import load_recipe
        from harness.config.schema import validate

        validate(load_recipe(args.recipe, args.overrides))
        from harness import run

        if args.command == "train":
            run.train(args.recipe, args.overrides)
        else:
            run.evaluate(args.recipe, args.overrides)
        return 0

    return report_errors(command, debug)


if __name__ == "__main__":
    sys.exit(main())
