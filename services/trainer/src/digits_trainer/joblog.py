"""A job's raw training log: kept local while the child writes it, copied to the Object Store."""

from __future__ import annotations

import time
from pathlib import Path

import structlog
from nats.aio.msg import Msg

from digits_proto import utcnow
from digits_trainer.store import Store

log = structlog.get_logger(__name__)

LOG_FILE = "train.log"
LIVE_LIMIT = 900_000  # a live answer must fit one NATS message (1 MB by default)
TRAINER_MARK = "[trainer  ]"  # lines the trainer itself writes (the child's say [info     ]…)


def log_blob(model_id: str) -> str:
    """The log's name in the models bucket (the gateway serves it as `/models/<id>/log`)."""
    return f"{model_id}/{LOG_FILE}"


class JobLog:
    """The `train.log` of one attempt: continues the stored log, says what the parent saw,
    and is uploaded at each snapshot, every `every` seconds while training, and at the end."""

    def __init__(self, store: Store, model_id: str, folder: Path, every: float):
        self.store = store
        self.model_id = model_id
        self.path = folder / LOG_FILE
        self.every = every
        self.uploaded = float("-inf")
        self.opened = False
        # Lines the disk refused (full, read-only): the uploads still carry them, so the
        # stored log says how the attempt ended even when the local file could not.
        self.unwritten: list[str] = []

    async def open(self, header: str) -> None:
        """Start from the stored log when it is longer than the local one (an earlier attempt
        ran on another node), then append this attempt's header: attempts append, never
        overwrite."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            stored = await self.store.read_model_file(log_blob(self.model_id))
        except Exception:  # the bus hiccuped: the local log still works
            log.warning("log_fetch_failed", model_id=self.model_id, exc_info=True)
            stored = None
        local = self.path.stat().st_size if self.path.exists() else 0
        if stored is not None and len(stored) > local:
            self.path.write_bytes(stored)
        self.write(header)
        self.opened = True
        await self.upload()

    async def close(self, line: str) -> None:
        """The attempt's last line, then the final upload (once; nothing if never opened)."""
        if self.opened:
            self.opened = False
            self.write(line)
            await self.upload()

    def write(self, line: str) -> None:
        """One line from the trainer itself (the child writes its own lines to the same file)."""
        text = f"{utcnow():%Y-%m-%d %H:%M:%S} {TRAINER_MARK} {line}\n"
        if not self.unwritten:  # once one line is missing, later ones would come before it
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(text)
                return
            except OSError as e:
                log.warning(
                    "log_write_failed",
                    model_id=self.model_id,
                    path=str(self.path),
                    error=e.strerror,
                )
        self.unwritten.append(text)

    async def answer(self, msg: Msg) -> None:
        """A live read while the attempt runs (the gateway's log route asks first)."""
        try:
            data = self.path.read_bytes()
        except OSError:
            data = b""
        await msg.respond(data if len(data) <= LIVE_LIMIT else b"")

    async def upload(self, force: bool = True) -> None:
        """Copy the log to the Object Store (unless `force` is off and it was copied lately);
        a failure is logged, never fatal to the job."""
        now = time.monotonic()
        if not force and now - self.uploaded < self.every:
            return
        if not self.path.exists() and not self.unwritten:
            return
        self.uploaded = now
        try:
            if self.unwritten:
                local = self.path.read_bytes() if self.path.exists() else b""
                data = local + "".join(self.unwritten).encode()
                await self.store.put_model_bytes(log_blob(self.model_id), data)
            else:
                await self.store.put_model_file(log_blob(self.model_id), self.path)
        except Exception:  # the next upload carries the same lines
            log.warning("log_upload_failed", model_id=self.model_id, exc_info=True)
