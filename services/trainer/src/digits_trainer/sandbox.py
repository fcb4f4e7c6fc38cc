"""Check network source in a throwaway, confined child: build it, run one dummy batch, describe
its graph.

`Sandbox.check()` (the service side) starts `python -m digits_trainer.sandbox` through the
bubblewrap wrapper (confine.py): uid 65534, no network, its own pid namespace, a scrubbed
environment, memory/process/file-size rlimits, a scratch folder as its only world; a CPU-time
limit (RLIMIT_CPU, set by the child on itself once MXNet is imported) and a wall-time limit,
after which the whole process tree is killed. Checks are queued per user: each user has at
most `per_user` children at once and `backlog` more waiting (more is a 429), and all users
share `total` children. Any error becomes a 400 on `custom_network` whose message shows the
failing line of the source; so does a sandbox that cannot be set up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import resource
import signal
import sys
import tempfile
import traceback
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import msgspec

from digits_proto.models import NetworkGraph
from digits_trainer.confine import Confiner, Limits, SandboxUnavailable
from digits_trainer.confined import Confined, spawn
from digits_trainer.errors import InvalidField
from digits_trainer.settings import inherited_environment
from digits_trainer.turns import Turns

FIELD = "custom_network"
FILENAME = "custom_network"  # nets.CUSTOM_FILENAME, kept import-free of MXNet here
PASSED_KEPT = 64  # networks remembered as built


class Probe(msgspec.Struct, frozen=True, kw_only=True):
    """What the sandbox child is asked to check."""

    code: str
    classes: int
    input_shape: list[int]
    cpu_seconds: int = 20


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """What it answers: the graph, or the error with its line."""

    graph: NetworkGraph | None = None
    error: str = ""


class Spare(NamedTuple):
    """A sandbox child that has imported MXNet and waits for its one probe on stdin."""

    process: Confined
    scratch: tempfile.TemporaryDirectory


class Sandbox:
    """Starts sandbox children, keeping one warm (MXNet imported) so a check answers quickly."""

    def __init__(
        self,
        wall_seconds: float = 60.0,
        cpu_seconds: int = 20,
        confiner: Confiner | None = None,
        limits: Limits | None = None,
        turns: Turns | None = None,
    ) -> None:
        self.wall_seconds = wall_seconds
        self.cpu_seconds = cpu_seconds
        self.confiner = confiner
        self.limits = limits or Limits()
        self.turns = turns or Turns()
        self.spare: Spare | None = None
        self.closed = False
        self.refilling = False
        # Networks that built: a sweep or a clone sends the same code again (one child each
        # would cost seconds per job); only successes are kept, a failure is always re-run.
        self.passed: OrderedDict[tuple[str, int, tuple[int, ...]], NetworkGraph] = OrderedDict()

    def require(self) -> None:
        """InvalidField(custom_network) when user code may not run here (no sandbox)."""
        if self.confiner is not None:
            try:
                self.confiner.require()
            except SandboxUnavailable as e:
                raise InvalidField(FIELD, str(e)) from None

    async def _start(self) -> Spare:
        scratch = tempfile.TemporaryDirectory(prefix="digits-sandbox-")
        folder = Path(scratch.name)
        if self.confiner is not None:
            self.confiner.prepare(folder)
        env = {**inherited_environment(), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        process = await spawn(
            self.confiner,
            [sys.executable, "-m", "digits_trainer.sandbox"],
            folder,
            env,
            self.limits,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return Spare(process, scratch)

    async def warm(self) -> None:
        """Have a child import MXNet before the first check arrives."""
        with contextlib.suppress(InvalidField):
            self.require()
            if self.spare is None and not self.closed:
                self.spare = await self._start()

    async def check(
        self, code: str, classes: int, input_shape: list[int], user: str = ""
    ) -> NetworkGraph:
        """The graph if `code` builds and runs one batch; else InvalidField(custom_network)."""
        self.require()
        key = (hashlib.sha256(code.encode()).hexdigest(), classes, tuple(input_shape))
        if (graph := self.passed.get(key)) is not None:
            self.passed.move_to_end(key)
            return graph
        async with self.turns.turn(user):
            graph = await self._probe(code, classes, input_shape)
        self.passed[key] = graph
        while len(self.passed) > PASSED_KEPT:
            self.passed.popitem(last=False)
        return graph

    async def _refill(self) -> None:
        """The next check finds MXNet already imported (one spare, one refill at a time)."""
        if self.spare is None and not self.closed and not self.refilling:
            self.refilling = True
            try:
                spare = await self._start()
            finally:
                self.refilling = False
            if self.spare is None and not self.closed:
                self.spare = spare
            else:
                await _end(spare)

    async def _probe(self, code: str, classes: int, input_shape: list[int]) -> NetworkGraph:
        spare, self.spare = self.spare or await self._start(), None
        probe = Probe(
            code=code, classes=classes, input_shape=input_shape, cpu_seconds=self.cpu_seconds
        )
        child = spare.process
        try:
            out = await asyncio.wait_for(
                child.exchange(msgspec.json.encode(probe)), self.wall_seconds
            )
        except TimeoutError:
            raise InvalidField(
                FIELD, f"Building the network took longer than {self.wall_seconds:g} s"
            ) from None
        finally:
            await _end(spare)
            await self._refill()
        try:
            verdict = msgspec.json.decode(out.strip().splitlines()[-1], type=Verdict)
        except (msgspec.DecodeError, IndexError):
            limit = child.returncode in (-signal.SIGKILL, -signal.SIGXCPU, 128 + signal.SIGXCPU)
            cause = f" (over {self.cpu_seconds} s of CPU time?)" if limit else ""
            raise InvalidField(
                FIELD, f"Building the network stopped with exit code {child.returncode}{cause}"
            ) from None
        if verdict.graph is None:
            raise InvalidField(FIELD, verdict.error or "The network could not be built")
        return verdict.graph

    async def close(self) -> None:
        """Stop the warm child (and start no other)."""
        self.closed = True
        if self.spare is not None:
            await _end(self.spare)
            self.spare = None


async def _end(spare: Spare) -> None:
    await spare.process.end()
    spare.scratch.cleanup()


def describe_error(error: BaseException, code: str) -> str:
    """The error with the line of the user's source where it happened."""
    lines = code.splitlines()
    lineno = None
    if isinstance(error, SyntaxError) and error.filename == FILENAME:
        lineno = error.lineno
    else:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == FILENAME]
        lineno = frames[-1].lineno if frames else None
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = f"{type(error).__name__}: {message}"[:500]
    if lineno and 0 < lineno <= len(lines):
        return f"line {lineno}: {lines[lineno - 1].strip()} → {message}"
    return message


def graph_of(net, input_shape: list[int]) -> NetworkGraph:
    """Nodes (operators and the input), edges, output shapes and parameter counts."""
    import mxnet as mx
    import numpy as np

    from digits_proto.models import GraphNode

    symbol = net(mx.sym.var("data"))
    internals = symbol.get_internals()
    arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=(1, *input_shape))
    sizes = dict(zip(internals.list_arguments(), arg_shapes, strict=True))
    sizes.update(zip(internals.list_auxiliary_states(), aux_shapes, strict=True))
    outputs = dict(zip(internals.list_outputs(), out_shapes, strict=True))
    graph = json.loads(symbol.tojson())["nodes"]
    nodes, edges, total = [], [], 0
    for i, node in enumerate(graph):
        if node["op"] == "null" and node["name"] != "data":
            continue
        shape = (
            [1, *input_shape] if node["name"] == "data" else outputs.get(node["name"] + "_output")
        )
        params = 0
        for j, *_ in node.get("inputs", []):
            source = graph[j]
            if source["op"] == "null" and source["name"] != "data":
                if source["name"] in internals.list_arguments():
                    params += int(np.prod(sizes[source["name"]]))
            else:
                edges.append([j, i])
        total += params
        op = "Input" if node["name"] == "data" else node["op"]
        nodes.append(
            GraphNode(id=i, name=node["name"], op=op, shape=list(shape or []), params=params)
        )
    return NetworkGraph(nodes=nodes, edges=edges, total_params=total)


def probe(request: Probe) -> NetworkGraph:
    """Build, initialize and run the network on one dummy batch; check its output shape."""
    import mxnet as mx

    from digits_trainer.nets import Model, initializer, load_builder

    shape = tuple(request.input_shape)
    net = Model(load_builder(request.code, FILENAME), request.classes, shape, None)
    net.initialize(initializer())
    net.hybridize()
    out = net(mx.nd.zeros((2, *shape)))
    if out.shape != (2, request.classes):
        raise ValueError(
            f"build_network's output is {out.shape} for a batch of 2; expected "
            f"(2, {request.classes}) logits"
        )
    return graph_of(net, list(shape))


def main() -> int:
    """Import MXNet, then answer one Probe from stdin with one Verdict line on stdout."""
    answer = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything the user's code prints stays off the verdict line
    import mxnet  # noqa: F401 - warm: paid before the request arrives

    import digits_trainer.nets  # noqa: F401

    request = msgspec.json.decode(sys.stdin.buffer.read(), type=Probe)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = int(usage.ru_utime + usage.ru_stime) + request.cpu_seconds  # the import is not theirs
    resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
    try:
        verdict = Verdict(graph=probe(request))
    except BaseException as e:  # noqa: BLE001 - every mistake in user code is the answer
        verdict = Verdict(error=describe_error(e, request.code))
    answer.write(msgspec.json.encode(verdict) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
