"""A training child process: `python -m digits_trainer.child config.json`.

It needs no NATS: reports go to stdout as JSON lines (see reports.py), the training log to
stderr, which the parent writes to the job's log file. Started as a spare
(`python -m digits_trainer.child --wait`, see spares.py), it imports MXNet first, says `ready`,
then reads its job's config and folder from stdin (its stderr is already the job's log: the
parent opened it). Paths in the config are relative to the job's folder, its working folder.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import BinaryIO

import msgspec
import structlog

from digits_trainer.config import read_config
from digits_trainer.reports import DoneReport, ReadyReport, Report, encoder, error_report

log = structlog.get_logger("digits_trainer.child")


def claim_stdout() -> BinaryIO:
    """Keep the real stdout for reports and point fd 1 at stderr.

    Anything else that writes to stdout (a library's print, C code) then lands in the log
    instead of corrupting the report stream.
    """
    reports = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    return reports


def configure_logging() -> None:
    """Plain, timestamped lines: this log is the job's "raw output" a user reads."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=True),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def devices_to_contexts(devices: list[str]):
    """MXNet contexts for the leased devices: `gpu:i` is mx.gpu(i), `cpu:i` mx.cpu(i) (several
    CPU contexts split each batch like GPUs do); the CPU when there are none or no CUDA build
    sees the GPUs."""
    import mxnet as mx

    gpus = [int(d.split(":", 1)[1]) for d in devices if d.startswith("gpu:")]
    if gpus and mx.context.num_gpus() >= len(gpus):
        return [mx.gpu(i) for i in gpus]
    if gpus:
        log.warning("this MXNet build sees no leased GPU; training on the CPU", devices=devices)
        return [mx.cpu()]
    cpus = [int(d.split(":", 1)[1]) for d in devices if d.startswith("cpu:")]
    return [mx.cpu(i) for i in cpus] or [mx.cpu()]


def await_job(emit) -> str | None:
    """As a spare: import what training needs, say so, then take the job from stdin: its
    folder becomes the working folder. None when stdin closes first (the spare was not
    needed)."""
    import mxnet  # noqa: F401 - the slow part, paid before the job arrives

    import digits_trainer.data
    import digits_trainer.loop  # noqa: F401

    emit(ReadyReport())
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return None
    from digits_trainer.spares import Handover

    job = msgspec.json.decode(line, type=Handover)
    os.chdir(job.folder)
    return job.config


def main(argv: list[str]) -> int:
    """Train the job in `argv[1]` (or, with `--wait`, the one stdin names); exit 0 after a
    `done` report, 1 after an `error` one."""
    reports = claim_stdout()
    configure_logging()

    def emit(report: Report) -> None:
        reports.write(encoder.encode(report) + b"\n")  # one write per line: never interleaved

    path = argv[1]
    if path == "--wait":
        path = await_job(emit)
        if path is None:
            return 0
    try:
        config = read_config(path)
        # MXNet is imported here, after the fd swap, so anything it prints goes to the log.
        from digits_trainer.data import load_data
        from digits_trainer.loop import train
        from digits_trainer.stream import RecordImages

        ctx = devices_to_contexts(config.devices)
        data = load_data(config)
        streamed = isinstance(data.train.images, RecordImages)  # past the preload budget
        log.info(
            "data loaded",
            train=len(data.train),
            val=len(data.val) if data.val else 0,
            read="from disk batch by batch" if streamed else "into memory",
        )
        train(config, data, ctx, emit)
    except Exception as e:  # any failure is reported; its traceback goes to the log
        emit(error_report(e))  # first: on a full disk the log's own write fails too
        with contextlib.suppress(OSError):
            log.exception("training failed")
        return 1
    emit(DoneReport())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
