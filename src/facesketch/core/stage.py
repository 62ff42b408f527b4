"""Shared entry-point plumbing for the thin scripts in ``stages/``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable

from facesketch import TASKS
from facesketch.core.errors import FacesketchError
from facesketch.core.params import load_params

# --- one experiment at a time in a workspace --------------------------------------------------
# DVC holds its repo lock (.dvc/tmp/lock) only around its own bookkeeping and releases it while a
# stage's command runs, so a second `dvc exp run` typed during training gets the lock, stashes
# the workspace under the running experiment and breaks both (a git index.lock, "Could not apply
# stash commit", params.yaml reverted, a leftover stash entry that the next run silently runs).
# Before it stashes, `dvc exp run` (and `--queue`, which stashes the workspace too) takes a write
# entry on "workspace" in DVC's experiment rwlock (.dvc/tmp/exps/rwlock) and refuses while a live
# process holds one. So the first stage a `dvc exp run`/`dvc repro` runs in the workspace
# registers such an entry held by a small watcher process that lives exactly as long as that
# DVC process, then removes the entry. DVC prints the entry's "cmd" in its refusal: our message.
# Not covered: the time between the first `dvc exp run` stashing and its first stage starting
# (DVC releases its lock in between): a second run started then still breaks both. The guard is
# registered as soon as a stage script imports this module, before its heavy imports.
EXPS_RWLOCK_DIR = os.path.join(".dvc", "tmp", "exps")
GUARD_MARK = "facesketch guard for dvc PID"

_WATCHER = r"""
import json, os, sys, time
import psutil
from dvc.lock import Lock
pid, lock_dir = int(sys.argv[1]), sys.argv[2]
try:
    psutil.Process(pid).wait()
except psutil.Error:
    pass
path = os.path.join(lock_dir, "rwlock")
try:
    with Lock(os.path.join(lock_dir, "rwlock.lock")):
        with open(path, encoding="utf-8") as f:
            lock = json.load(f)
        if (lock.get("write") or {}).get("workspace", {}).get("pid") == os.getpid():
            del lock["write"]["workspace"]
            if not lock["write"]:
                del lock["write"]
            with open(path, "w", encoding="utf-8") as f:
                json.dump(lock, f)
except Exception:
    pass  # DVC removes an entry whose process is gone itself (with a warning)
"""


def _dvc_parent():
    """The `dvc exp run` / `dvc repro` process running this stage in this very folder, or None
    (run by hand, by a queued experiment in its temp copy, or by something else)."""
    import psutil

    proc = psutil.Process().parent()
    here = os.path.realpath(os.getcwd())
    while proc is not None and proc.pid > 1:
        try:
            cmd = proc.cmdline()
            names = [os.path.basename(a) for a in cmd[:3]]
            if "dvc" in names:
                args = cmd[names.index("dvc") + 1:]
                workspace_run = args[:2] == ["exp", "run"] or args[:1] == ["repro"]
                if workspace_run and not {"--temp", "--queue"} & set(args) and os.path.realpath(proc.cwd()) == here:
                    return proc
                return None
            proc = proc.parent()
        except psutil.Error:
            return None
    return None


def guard_workspace() -> None:
    """Refuse, through DVC's own check, a second `dvc exp run` in this workspace while this one runs."""
    if not os.path.isdir(os.path.join(".dvc", "tmp")):
        return
    try:
        import psutil
        from dvc.lock import Lock, LockError
    except ImportError:
        return
    try:
        dvc = _dvc_parent()
    except (psutil.Error, OSError, ValueError):
        return
    if dvc is None:
        return
    mark = f"{GUARD_MARK} {dvc.pid}"
    os.makedirs(EXPS_RWLOCK_DIR, exist_ok=True)
    path = os.path.join(EXPS_RWLOCK_DIR, "rwlock")
    try:
        with Lock(os.path.join(EXPS_RWLOCK_DIR, "rwlock.lock")):
            try:
                with open(path, encoding="utf-8") as f:
                    lock = json.load(f)
            except FileNotFoundError:
                lock = {}
            held = (lock.get("write") or {}).get("workspace")
            if held and psutil.pid_exists(int(held.get("pid", 0))):
                return  # already guarded by this or an earlier stage of this run
            watcher = subprocess.Popen([sys.executable, "-c", _WATCHER, str(dvc.pid), EXPS_RWLOCK_DIR],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
            command = " ".join(["dvc"] + dvc.cmdline()[[os.path.basename(a) for a in dvc.cmdline()].index("dvc") + 1:])
            lock.setdefault("write", {})["workspace"] = {"pid": watcher.pid, "cmd": (
                f"{command}  [{mark}]\n\n"
                "An experiment is running in this workspace; a second `dvc exp run` here would stash "
                "its files under it. Nothing was changed. Wait for it to finish, or queue experiments "
                "instead: `dvc exp run --queue -S ...` for each, then `dvc queue start` (queued "
                "experiments run in their own copies, not in this workspace).")}
            tmp = f"{path}.facesketch.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(lock, f)
            os.replace(tmp, path)
    except (LockError, OSError, ValueError):
        return  # best effort: never stop a stage over the guard


def leftover_stash() -> str | None:
    """Under a workspace `dvc exp run`: why to stop when DVC's workspace stash (refs/exps/stash)
    still holds entries. DVC drops the running experiment's entry before its stages run, so any
    entry left is one stranded by an earlier failed run, which DVC would silently run next."""
    try:
        dvc = _dvc_parent()
        if dvc is None:
            return None
        args = dvc.cmdline()[[os.path.basename(a) for a in dvc.cmdline()].index("dvc") + 1:]
        if args[:2] != ["exp", "run"]:
            return None
        out = subprocess.run(["git", "log", "-g", "--format=%h %gs", "refs/exps/stash", "--"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    entries = [line for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []
    if not entries:
        return None
    shown = "; ".join(entries[:5]) + (f"; ... ({len(entries)} in all)" if len(entries) > 5 else "")
    return (f"DVC's workspace stash holds {len(entries)} experiment(s) left by an earlier `dvc exp run` that "
            f"failed ({shown}); DVC would run them too, after this one, in this workspace. Stopped before any "
            "work. Look at one: `git stash show -p <sha>` (your edits of then may be there); drop them: "
            "`git update-ref -d refs/exps/stash`; then run your experiment again.")


# a stage script imports this module before its heavy imports (Keras): guard the workspace now
if os.path.basename(os.path.dirname(os.path.abspath(sys.argv[0]))) == "stages":
    guard_workspace()


def run(main: Callable[[argparse.Namespace, dict[str, Any]], str | None], *,
        description: str, args: list[tuple[list[str], dict]] = ()) -> None:
    """Parse ``args``, load params.yaml, run ``main``; a FacesketchError becomes one line and exit 1,
    an interrupt one line and the shell's status for it (130 for Ctrl-C)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    for flags, kwargs in args:
        parser.add_argument(*flags, **kwargs)
    ns = parser.parse_args()
    guard_workspace()  # no-op when the import below already did it
    t0 = time.time()
    try:
        if stranded := leftover_stash():
            raise FacesketchError(stranded)
        message = main(ns, load_params(ns.params))
    except FacesketchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:  # Ctrl-C (or SIGTERM, see errors.Interrupted): no traceback
        print(str(exc) or "interrupted", file=sys.stderr)
        sys.exit(128 + int(getattr(exc, "signum", signal.SIGINT)))
    if message:
        print(f"{message} ({time.time() - t0:.1f} s)")


TASK = (["--task"], {"required": True, "choices": list(TASKS), "help": "f2s: photo->sketch, s2f: sketch->photo"})
MODEL_TASK = [
    (["--model"], {"required": True, "help": "model name from the registry (params.yaml: models)"}),
    TASK,
]
