"""Child processes that never outlive the service that started them.

A service killed with SIGKILL runs no cleanup: whatever it started (build workers, training
children) would run on, reparented to init, holding memory and devices. The kernel's parent-death
signal (`prctl(PR_SET_PDEATHSIG)`) kills such a child when its parent goes, however it goes.

Two caveats the callers rely on:
- the signal follows the parent *thread* that forked the child: start children from a thread that
  lives as long as the service (the event loop's, or the main thread), never from a short-lived
  worker thread, whose end would kill them;
- it is not inherited by the child's own children: a child that starts its own processes puts
  them in its process group (or its own pid namespace, as bubblewrap does), which its parent
  ends as a whole (`signal_group`).

Here, outside `digits_proto.runtime`: a spawned build worker imports this module for its
initializer, and the runtime package would drag nats-py and the HTTP stack into every worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux: nothing to arm
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    return None


# Looked up here, in the parent: a `preexec_fn` runs between fork and exec, where loading a
# library could wait forever on a lock another thread of the parent held at the fork.
_prctl = _load_prctl()


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """In a child: get `sig` (SIGKILL: no cleanup to wait for) when `parent` (the pid that
    started it) dies; a supervisor whose children must stop cleanly passes SIGTERM.

    Usable as a multiprocessing initializer (`initargs=(os.getpid(),)`) or, through
    `die_with_parent_hook()`, as a subprocess `preexec_fn`. If the parent already died between
    the fork and this call, no signal will come: the child sends `sig` to itself at once.
    """
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:  # reparented already: the parent is gone
        os.kill(os.getpid(), sig)


def die_with_parent_hook(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` that arms `die_with_parent` for the calling process (call it in the
    parent: the pid is taken now, before the fork)."""
    return functools.partial(die_with_parent, os.getpid(), sig)


def signal_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a child's whole process group (the child leads it: `start_new_session`); a group
    already gone is fine (its id is not reused while any member lives)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
