"""
Who owns a saga: worker ids, and telling whether a worker has died.

A worker id is ``host:pid:nonce``. A saga's lease expires after a while in
any case, but on the same host recovery need not wait for it: if the owner's
process no longer exists (or is a zombie), its sagas are abandoned now. A
reused pid can only make recovery wait for the lease, never take a saga from
a live owner too early, because the nonce is not checked against the process
(a live process with that pid is simply treated as the owner).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection

from .errors import SagaStateError
from .records import SagaStatus

__all__ = ["check_seizable", "is_dead_locally", "new_worker_id"]


def new_worker_id() -> str:
    """
    Return a fresh worker id for this process: ``host:pid:nonce``.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_locally(worker_id: str) -> bool:
    """
    Return whether *worker_id* names a process on this host that has ended.

    Ids from other hosts, or that do not parse, are never called dead: only
    their lease expiring frees their sagas.
    """
    host, _, rest = worker_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False

    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        # The process exists but belongs to another user.
        return False

    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A killed child that its parent has not reaped yet still answers
    # kill(pid, 0); /proc tells it apart (state "Z"). Without /proc the
    # process counts as alive and its lease decides.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return False

    return bool(fields) and fields[0] in (b"Z", b"X")


def check_seizable(
    saga_id: str, status: SagaStatus, statuses: Collection[SagaStatus]
) -> None:
    """
    Raise `SagaStateError` unless *status* is one of *statuses*.
    """
    if status not in statuses:
        allowed = ", ".join(sorted(s.value for s in statuses))
        raise SagaStateError(
            f"saga {saga_id!r} is {status.value}; this action needs it to be "
            f"one of: {allowed}"
        )
