"""``harness push RUN_DIR --repo NAMESPACE/NAME``: a run's model, code, recipe, metrics and model card to the
Hugging Face Hub, through ``huggingface_hub``'s ``HfApi`` (``whoami`` → ``create_repo`` → ``create_branch`` →
``upload_folder``); or ``--to-folder DIR``: exactly those files, written for review or offline use.

The upload is built in a temporary folder (:func:`harness.hub.stage.build_folder`) and committed in one commit,
so a failed push (no token, a rejected token, a network error mid-upload) leaves the run folder as it was and the
repo without a half commit; the same command retries it. Recipes can push at the end of training with a
``hub:`` section (``push_to_hub``, ``hub_model_id``, ``hub_private_repo``, ``hub_revision`` — the Hugging Face
Trainer's names): :func:`push_after_training`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from harness.errors import HarnessError, first_line, report_errors

RETRY = "nothing in the run folder was changed; fix this and push again"


def check_repo_id(repo_id: str, where: str = "--repo") -> str:
    """``NAMESPACE/NAME`` or ``NAME`` as the Hub allows it (``huggingface_hub``'s own validator)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HarnessError(f"{where}: {repo_id!r} is not a valid Hub repo id ({first_line(e)})") from None
    return repo_id


def to_folder(run_dir: str | Path, dest: str | Path, repo_id: str, base_model: str | None = None) -> list[str]:
    """Write what a push of ``run_dir`` uploads into ``dest``; returns the file names."""
    check_repo_id(repo_id)
    return _build(run_dir, dest, repo_id, base_model)


def _build(run_dir, dest, repo_id: str, base_model: str | None) -> list[str]:
    """A run folder, or a ``harness leaderboard`` folder (one model per task)."""
    from harness.hub.stage import build_folder, build_leaderboard_folder, is_leaderboard, read_run

    if is_leaderboard(run_dir):
        return build_leaderboard_folder(run_dir, dest, repo_id, base_model)
    return build_folder(read_run(run_dir, base_model), dest, repo_id)


def _token(token: str | None) -> str:
    from huggingface_hub import constants, get_token

    if constants.HF_HUB_OFFLINE:
        raise HarnessError("HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it to push (or write the "
                           "files with --to-folder DIR)")
    token = token or get_token()
    if not token:
        raise HarnessError("no Hugging Face token: run `hf auth login` or set HF_TOKEN to a token with write "
                           "access (https://huggingface.co/settings/tokens); " + RETRY)
    return token


def _hub_error(e: Exception, repo_id: str, step: str) -> HarnessError:
    """One line for a failed Hub call."""
    from huggingface_hub.errors import HfHubHTTPError

    status = getattr(getattr(e, "response", None), "status_code", None)
    if isinstance(e, HfHubHTTPError) and status == 401:
        return HarnessError(f"the Hub rejected the token ({step}: 401 Unauthorized): it is invalid or expired; "
                            f"`hf auth login --force` or set HF_TOKEN to a valid token; {RETRY}")
    if isinstance(e, HfHubHTTPError) and status == 403:
        return HarnessError(f"the token may not write to {repo_id} ({step}: 403 Forbidden): use a token with "
                            f"write access to that namespace; {RETRY}")
    if isinstance(e, HfHubHTTPError) and status is not None:
        return HarnessError(f"the Hub answered {status} to {step} of {repo_id}: {first_line(e)}; {RETRY}")
    if isinstance(e, ValueError):  # the client's own checks (e.g. the card's metadata)
        return HarnessError(f"huggingface_hub refused {step} of {repo_id}: {first_line(e)}; {RETRY}")
    return HarnessError(f"network error during {step} of {repo_id} ({type(e).__name__}: {first_line(e)}); "
                        f"the upload was not committed; {RETRY}")


def push(run_dir: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         commit_message: str | None = None, base_model: str | None = None, token: str | None = None,
         endpoint: str | None = None) -> str:
    """Upload a run; returns the commit's URL. ``repo_id`` without a namespace goes to the token's user."""
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="harness-push-") as tmp:
        upload = Path(tmp) / "upload"
        # everything local first (a run without a model fails before any network call); a repo id without a
        # namespace is completed from whoami below, so the card names the final id
        namespace_given = "/" in repo_id
        _build(run_dir, upload, repo_id, base_model)
        token = _token(token)
        api = HfApi(endpoint=endpoint, token=token)
        step = "checking the token (whoami)"
        try:
            user = api.whoami(token=token)
            if not namespace_given:
                repo_id = f"{user['name']}/{repo_id}"
                shutil.rmtree(upload)
                _build(run_dir, upload, repo_id, base_model)
            step = "creating the repo"
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if revision:
                step = f"creating branch {revision!r}"
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            step = "the upload"
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=upload, revision=revision,
                commit_message=commit_message or f"harness push of {Path(run_dir).name}")
        except HarnessError:
            raise
        except Exception as e:  # noqa: BLE001 — every Hub/network failure becomes one message
            from huggingface_hub.errors import HfHubHTTPError

            if isinstance(e, (HfHubHTTPError, OSError, ValueError)) or type(e).__module__.startswith(("httpx", "httpcore")):
                raise _hub_error(e, repo_id, step) from e
            raise
    return commit.commit_url if hasattr(commit, "commit_url") else str(commit)


def push_after_training(hub, run_dir: str | Path) -> None:
    """A recipe's ``hub:`` section (:class:`harness.config.schema.HubConfig`) after a finished run."""
    if hub is None or not hub.push_to_hub:
        return
    try:
        url = push(run_dir, hub.hub_model_id, private=hub.hub_private_repo, revision=hub.hub_revision,
                   commit_message=hub.hub_commit_message)
    except HarnessError as e:
        raise HarnessError(f"hub.push_to_hub: the run finished and is kept in {run_dir}, but the push failed: {e} "
                           f"(later: harness push {run_dir} --repo {hub.hub_model_id})") from e
    print(f"pushed to the Hub: {url}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness push",
        description="Upload a run (model weights, config, tokenizer, modeling code for harness models, PEFT "
                    "adapter, n-gram ARPA, recipe.yaml, metrics.json and a model card) to the Hugging Face Hub.",
        epilog="Authentication: `hf auth login` or HF_TOKEN. HF_ENDPOINT selects another Hub.")
    p.add_argument("run_dir", help="a finished run's output_dir (holding model/)")
    p.add_argument("--repo", required=True, metavar="NAMESPACE/NAME", help="the model repo (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", metavar="BRANCH", help="push to this branch (created from main if needed)")
    p.add_argument("--commit-message", metavar="TEXT", help="the commit's message")
    p.add_argument("--base-model", metavar="NAMESPACE/NAME",
                   help="a PEFT run's base model on the Hub, when the run used a local folder harness cannot name")
    p.add_argument("--to-folder", metavar="DIR", help="write the files that would be uploaded into DIR instead")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def command() -> int:
        if args.to_folder:
            files = to_folder(args.run_dir, args.to_folder, args.repo, args.base_model)
            print(f"wrote {len(files)} files to {args.to_folder} (what `harness push` uploads):")
            for name in files:
                print(f"  {name}")
            return 0
        url = push(args.run_dir, args.repo, private=args.private, revision=args.revision,
                   commit_message=args.commit_message, base_model=args.base_model)
        print(f"pushed {args.run_dir} to {url}")
        return 0

    return report_errors(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
