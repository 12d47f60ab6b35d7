"""The ``harness`` command: train, evaluate, validate, list and copy recipes, the GLUE leaderboard.

Bad input (recipe, data, paths) ends with one ``error:`` line naming the place and a non-zero exit
code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from harness.errors import HarnessError, RecipeError, report_errors

TRUST_HELP = ("let a recipe's model.trust_remote_code: true apply: the checkpoint's own Python code runs "
              "(only for checkpoints you trust)")

DESCRIPTION = "Train and evaluate sequence models from YAML recipes."

OVERRIDES_HELP = """\
overrides:
  key.path=value pairs change the recipe for this run, e.g.
    training.lr=3e-4 training.num_epochs=10 data.task=mrpc output_dir=runs/mrpc
    optimizer.component=sgd 'evaluation.splits=[validation,test]' training.resume=auto
  values are read as YAML (3e-4 is a number, [a,b] a list, null nothing).

Hugging Face TrainingArguments names, here:
  learning_rate → training.lr         num_train_epochs → training.num_epochs
  per_device_train_batch_size → training.batch_size (per process; times the processes under DDP)
  logging_steps → training.log_steps  lr_scheduler_type → scheduler.component   optim → optimizer.component
  resume_from_checkpoint → training.resume   overwrite_output_dir → training.overwrite
  every training / evaluation / tracking key: harness/config/schema.py; every section: docs/architecture.md"""

EPILOG = f"""\
commands:
  harness train RECIPE [key.path=value ...]     train, evaluate the best checkpoint, write the report
  harness eval RECIPE [model.path=DIR ...]      evaluate a saved model (default: the run's output_dir/model)
  harness validate RECIPE|FOLDER ...            check recipes without reading data or weights
  harness recipes                               list the shipped recipes; `harness recipes copy NAME DEST`
  harness leaderboard --recipe R --runs-dir D   every GLUE task → glue_submission.zip + leaderboard.md
  harness leaderboard --benchmark superglue --recipes recipes/superglue --runs-dir D
                                                every SuperGLUE task (+ AX-b/AX-g) → superglue_submission.zip
  harness push RUN_DIR --repo NS/NAME           upload a run (model, code, recipe, metrics, card) to the Hub
  accelerate launch --quiet harness/run.py RECIPE [...]   the same as `harness train`, launched by Accelerate

{OVERRIDES_HELP}"""


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="harness", description=DESCRIPTION, epilog=EPILOG, formatter_class=raw)
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,eval,validate,recipes,leaderboard,push}")
    for name, help_ in (("train", "train a recipe, evaluate it, write the report"),
                        ("eval", "evaluate a saved model (model.path=DIR, default output_dir/model)")):
        sp = sub.add_parser(name, help=help_, description=help_, epilog=OVERRIDES_HELP, formatter_class=raw)
        sp.add_argument("recipe", help="a recipe file (see `harness recipes`)")
        sp.add_argument("overrides", nargs="*", metavar="key.path=value", help="recipe changes for this run")
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
        sp.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    sp = sub.add_parser("validate", help="check recipes without touching data or weights",
                        description="Check recipes (files, or folders of them) without reading data or weights; "
                        "an unset ${env:NAME} is left as a placeholder.", epilog=OVERRIDES_HELP, formatter_class=raw)
    sp.add_argument("recipes", nargs="+", help="recipe files or folders, or key.path=value overrides applied to each")
    sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    sp.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    sp = sub.add_parser("recipes", help="list the shipped recipes, or copy one to edit",
                        description="List the shipped recipes, or copy one: `harness recipes copy glue_lora my.yaml`.")
    sp.add_argument("action", nargs="?", choices=("list", "copy"), default="list")
    sp.add_argument("name", nargs="?", help="a recipe's name (as listed) to copy")
    sp.add_argument("dest", nargs="?", help="where the copy goes (a file or a folder)")
    sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    # listed here for `harness --help`; main() hands its arguments to the leaderboard's own parser
    sub.add_parser("leaderboard", add_help=False,
                   help="train a GLUE recipe on every GLUE task (--benchmark superglue: SuperGLUE); write the "
                   "submission and leaderboard.md")
    sub.add_parser("push", add_help=False,  # harness/hub/push.py has its own parser
                   help="upload a run to the Hugging Face Hub with a model card (or --to-folder DIR)")
    return p


def allow_remote_code() -> None:
    """The command line's consent to ``model.trust_remote_code: true`` (read by recipe validation)."""
    from harness.config.schema import TRUST_REMOTE_CODE_ENV

    os.environ[TRUST_REMOTE_CODE_ENV] = "1"


# ---------------------------------------------------------------------------------- recipes


def recipes_root() -> Path:
    """The shipped recipes: ``recipes/`` beside the package in a checkout, else the copy the package
    installs under ``<prefix>/share/harness/recipes``."""
    checkout = Path(__file__).resolve().parent.parent / "recipes"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "harness" / "recipes"


def shipped_recipes() -> dict[str, Path]:
    """``{"glue_lora": path, "lm/lstm_small_ptb": path, ...}``."""
    root = recipes_root()
    return {str(p.relative_to(root).with_suffix("")): p for p in sorted(root.rglob("*.yaml"))}


def _first_comment(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") and line.strip("# "):
            return line.lstrip("# ").strip()
    return ""


def recipes_command(action: str, name: str | None, dest: str | None) -> int:
    found = shipped_recipes()
    if action == "list":
        if not found:
            raise HarnessError(f"no recipes found in {recipes_root()}")
        width = max(map(len, found))
        for key, path in found.items():
            print(f"{key:<{width}}  {_first_comment(path)}")
        print(f"\n({len(found)} recipes in {recipes_root()}; `harness recipes copy NAME DEST` copies one to edit)")
        return 0
    if not name or not dest:
        raise RecipeError("harness recipes copy: give a recipe name (see `harness recipes`) and a destination")
    key = name[:-5] if name.endswith(".yaml") else name
    if key not in found:
        import difflib

        close = difflib.get_close_matches(key, list(found), n=1)
        raise RecipeError(f"no shipped recipe {name!r}{f' (did you mean {close[0]!r}?)' if close else ''}; "
                          f"`harness recipes` lists them")
    target = Path(dest)
    if target.is_dir():
        target = target / found[key].name
    if target.exists():
        raise HarnessError(f"{target} exists already; choose another destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    text = found[key].read_text(encoding="utf-8")
    # a relative base (`extends: lstm_small_ptb.yaml`) would not be found next to the copy: make it absolute
    text = re.sub(r"^extends: (?!/)(\S+)$", lambda m: f"extends: {found[key].parent / m.group(1)}", text,
                  flags=re.MULTILINE)
    target.write_text(text, encoding="utf-8")
    print(f"copied {found[key]} to {target}")
    return 0


# ---------------------------------------------------------------------------------- validate


def validate_many(args: list[str], debug: bool = False) -> int:
    from harness.config.loader import load_recipe
    from harness.config.schema import validate

    overrides = [a for a in args if "=" in a and not os.path.exists(a)]
    paths = [Path(a) for a in args if a not in overrides]
    if not paths:
        print(f"error: no recipe to validate (only overrides: {' '.join(overrides)})", file=sys.stderr)
        return 2
    recipes = [r for p in paths for r in (sorted(p.rglob("*.yaml")) if p.is_dir() else [p])]
    failed = 0
    for path in recipes:
        try:
            validate(load_recipe(path, overrides, unset_env="placeholder"))
            print(f"ok: {path}")
        except HarnessError as e:
            if debug:
                raise
            failed += 1
            print(f"error: {path}: {e}", file=sys.stderr)
    return 2 if failed else 0


def _benchmark(args: list[str]) -> tuple[str, list[str]]:
    """``--benchmark glue|superglue`` (default glue) taken out of the leaderboard's arguments."""
    for i, a in enumerate(args):
        if a == "--benchmark" or a.startswith("--benchmark="):
            value = a.split("=", 1)[1] if "=" in a else (args[i + 1] if i + 1 < len(args) else "")
            if value not in ("glue", "superglue"):
                print(f"error: leaderboard --benchmark: expected glue or superglue, got {value!r}", file=sys.stderr)
                raise SystemExit(2)
            return value, args[:i] + args[i + (1 if "=" in a else 2):]
    return "glue", args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((i for i, a in enumerate(argv) if a != "--debug"), None)
    if first is not None and argv[first] == "leaderboard":
        from harness.workflows import glue_leaderboard, superglue_leaderboard

        rest = argv[first + 1 :] + (["--debug"] if "--debug" in argv[:first] else [])
        benchmark, rest = _benchmark(rest)
        return (superglue_leaderboard if benchmark == "superglue" else glue_leaderboard).main(rest)
    if first is not None and argv[first] == "push":
        from harness.hub import push

        return push.main(argv[first + 1 :] + (["--debug"] if "--debug" in argv[:first] else []))
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    if getattr(args, "trust_remote_code", False):
        allow_remote_code()

    def command() -> int:
        if args.command == "validate":
            return validate_many(args.recipes, debug)
        if args.command == "recipes":
            return recipes_command(args.action, args.name, args.dest)
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
