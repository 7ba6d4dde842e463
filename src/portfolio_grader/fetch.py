"""fetch: a git URL or a local folder becomes a private Workspace copy; the commit is recorded."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .models import Source, Workspace

MAX_REPO_BYTES = 200 * 1024 * 1024
CLONE_TIMEOUT = 180
_SKIP_DIRS = {"node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox"}


class FetchError(Exception):
    """The submission could not be fetched; nothing can be graded (exit 2)."""


class FetchLimit(FetchError):
    """The submission itself is over a limit (its size, the clone deadline): graded as nothing, with a scorecard."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def is_git_url(source: str) -> bool:
    return bool(re.match(r"^(https?|ssh|git|file)://", source)) or bool(re.match(r"^[\w.-]+@[\w.-]+:", source))


def safe_name(text: str) -> str:
    """A short, lowercase, filesystem- and docker-safe name."""
    stem = unquote(text.rstrip("/").rsplit("/", 1)[-1]).removesuffix(".git") or "submission"
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")
    return (name or "submission")[:60]


def fetch(source: str, ref: str | None = None, into: Path | None = None, timeout: float = CLONE_TIMEOUT) -> Workspace:
    """Clone or copy `source` into a new folder under `into` (a temp dir by default), within `timeout` seconds."""
    parent = Path(tempfile.mkdtemp(prefix="pg-ws-", dir=into))
    dest = parent / "repo"
    try:
        return _fetch_into(source, ref, parent, dest, timeout)
    except BaseException:  # a refusal, a timeout, Ctrl-C: leave no half-copied workspace behind
        shutil.rmtree(parent, ignore_errors=True)
        raise


def _fetch_into(source: str, ref: str | None, parent: Path, dest: Path, timeout: float) -> Workspace:
    commit: str | None
    if is_git_url(source):
        commit = _clone(source, ref, dest, timeout)
    else:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            shutil.rmtree(parent, ignore_errors=True)
            raise FetchError(f"{source}: no such folder, and not a git URL (https://, ssh://, git@, file://)")
        if ref:
            commit = _clone(folder.resolve().as_uri(), ref, dest, timeout)
        else:
            before = _tree_size(folder, skip=_SKIP_DIRS, stop_above=MAX_REPO_BYTES)  # refuse before copying it all
            if before > MAX_REPO_BYTES:
                raise FetchLimit(f"{source}: the repository is over the {MAX_REPO_BYTES // 2**20} MiB size limit")
            _copy_folder(folder, dest)
            commit = _head_commit(folder)
    size = _tree_size(dest)
    if size > MAX_REPO_BYTES:
        raise FetchLimit(f"{source}: the repository is {size // 2**20} MiB, over the {MAX_REPO_BYTES // 2**20} MiB "
                         "size limit")
    return Workspace(name=safe_name(source), source=Source(repo=source, ref=ref, commit=commit), path=dest)


def discard(workspace: Workspace) -> None:
    if workspace.path is not None:
        shutil.rmtree(workspace.path.parent, ignore_errors=True)


def _clone(url: str, ref: str | None, dest: Path, timeout: float = CLONE_TIMEOUT) -> str:
    import git  # gitpython: imported late so `--help` stays fast

    from .runtime.builders import run_command  # kills git's whole process group at the deadline or on Ctrl-C

    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "echo"}  # never hang on a password prompt
    shown = _without_credentials(url)
    # Shallow clones name branches and tags; a commit SHA needs the history.
    is_sha = bool(ref and re.fullmatch(r"[0-9a-f]{7,40}", ref))
    options = [] if is_sha else ["--depth", "1", "--single-branch", *(["--branch", ref] if ref else [])]
    git_bin = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"
    result = run_command([git_bin, "clone", "--quiet", *options, "--", url, str(dest)], timeout=max(timeout, 1.0),
                         env=env)
    if result.timed_out:
        raise FetchLimit(f"cloning {shown} did not finish within {max(timeout, 1.0):g} s (the clone deadline)",
                         timed_out=True)
    try:
        if not result.ok:
            raise git.GitCommandError(["git", "clone"], result.returncode or 1, result.error or result.output)
        repo = git.Repo(dest)
        if is_sha:
            repo.git.checkout(ref)
        return repo.head.commit.hexsha
    except git.GitCommandError as exc:
        lines = [line.strip(" '").removeprefix("stderr: ").strip(" '") for line in (exc.stderr or str(exc)).splitlines()]
        reason = next((line for line in lines if line.startswith(("fatal:", "error:"))), None) or next(
            (line for line in reversed(lines) if line), "git failed")
        what = f"ref {ref!r} of {shown}" if ref and re.search(r"branch|pathspec|revision|reference", reason) else shown
        raise FetchError(f"could not fetch {what}: {reason}") from None


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.password or parts.username:
        return url.replace(parts.netloc, parts.hostname or "", 1)
    return url


def _copy_folder(folder: Path, dest: Path) -> None:
    # symlinks=True copies links as links: a link to /etc/passwd stays a link, never its target's content.
    shutil.copytree(folder, dest, symlinks=True, ignore=shutil.ignore_patterns(*_SKIP_DIRS))


def _head_commit(folder: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _tree_size(root: Path, skip: Collection[str] = frozenset(), stop_above: int | None = None) -> int:
    """Bytes of the files under `root` (links counted as links); stops counting once over `stop_above`."""
    total = 0
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
        if stop_above is not None and total > stop_above:
            break
    return total
