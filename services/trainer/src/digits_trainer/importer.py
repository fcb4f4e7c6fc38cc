"""Check an imported network (exported symbol + params) in a throwaway child, and turn its symbol
into Gluon source that a fine-tuning job can build.

`Importer.check()` starts `python -m digits_trainer.importer` confined as the custom-network
sandbox is (confine.py: uid 65534, no network, a scratch folder holding copies of the two files
as its only world), with a CPU-time limit and a wall-time limit:
the child loads the symbol and the params with `SymbolBlock.imports`, runs one zero batch of the
declared input shape and answers the number of outputs. A file MXNet cannot parse (or that
crashes it) is a 400 naming the form field, never a dead service.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import msgspec

from digits_trainer.confine import Confiner, Limits, SandboxUnavailable
from digits_trainer.confined import spawn
from digits_trainer.errors import InvalidField
from digits_trainer.settings import inherited_environment

MEAN_PARAM = "model_preprocess_mean"  # nets.PREPROCESS_MEAN, kept import-free of MXNet here

# Gluon source for a network known only by its exported symbol. The symbol is embedded; the
# mean the original network subtracted is cut out (the new job's network subtracts its own
# dataset's mean) and the last FullyConnected layer gets the new class count, so fine-tuning
# (nets.load_matching) keeps every other layer's weights and initializes that one afresh.
SOURCE = '''"""{title}: the network of an imported pretrained model, rebuilt from its symbol."""

import json

import mxnet as mx
from mxnet import gluon

SYMBOL = {symbol!r}
MEAN = {mean!r}


def build_network(classes, input_shape):
    graph = json.loads(SYMBOL)
    nodes = graph["nodes"]
    data = next(i for i, n in enumerate(nodes) if n["op"] == "null" and n["name"] == "data")
    for i, node in enumerate(nodes):
        sources = [nodes[j]["name"] for j, *_ in node.get("inputs", [])]
        if node["op"] == "broadcast_sub" and MEAN in sources:
            for other in nodes:
                other["inputs"] = [
                    [data, 0, 0] if j == i else [j, *rest] for j, *rest in other.get("inputs", [])
                ]
    last = max(i for i, n in enumerate(nodes) if n["op"] == "FullyConnected")
    nodes[last].setdefault("attrs", {{}})["num_hidden"] = str(classes)
    for j, *_ in nodes[last]["inputs"][1:]:  # its weight and bias: the shapes change
        nodes[j].get("attrs", {{}}).pop("__shape__", None)
    block = gluon.SymbolBlock(mx.sym.load_json(json.dumps(graph)), mx.sym.var("data"))
    # Gluon layers give biases (and batch-norm shifts) a zero init; a SymbolBlock's parameters
    # have none, and Xavier refuses vectors: the re-sized layer's bias would not initialize.
    for name, param in block.collect_params().items():
        if name.endswith(("bias", "beta", "running_mean", "moving_mean")):
            param.init = mx.init.Zero()
        elif name.endswith(("gamma", "running_var", "moving_var")):
            param.init = mx.init.One()
    return block
'''


def network_source(title: str, symbol_json: str) -> str:
    """Gluon source defining `build_network` from an exported symbol ("" if it has no
    FullyConnected layer to re-size: such a model classifies but cannot be fine-tuned)."""
    try:
        nodes = json.loads(symbol_json)["nodes"]
    except (ValueError, KeyError, TypeError):
        return ""
    if not any(isinstance(n, dict) and n.get("op") == "FullyConnected" for n in nodes):
        return ""
    return SOURCE.format(title=title.replace('"', "'"), symbol=symbol_json, mean=MEAN_PARAM)


class Probe(msgspec.Struct, frozen=True, kw_only=True):
    """What the child is asked: load these files, run a batch of this shape."""

    symbol: str
    params: str
    input_shape: list[int]
    cpu_seconds: int = 30
    source: str = ""  # also build this fine-tuning source with the same input, if set


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """The child's answer: the output width, whether the source builds, or the error."""

    outputs: int = 0
    source_ok: bool = False
    error: str = ""


class Importer:
    """Runs probes in fresh children (rare: one per imported model)."""

    def __init__(
        self,
        wall_seconds: float = 60.0,
        cpu_seconds: int = 30,
        confiner: Confiner | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.wall_seconds = wall_seconds
        self.cpu_seconds = cpu_seconds
        self.confiner = confiner
        self.limits = limits or Limits()

    async def check(self, probe: Probe, field: str) -> Verdict:
        """The verdict, or InvalidField(field) when the network cannot be loaded and run."""
        if self.confiner is not None:
            try:  # MXNet parses the uploaded files (C++): the child runs confined or not at all
                self.confiner.require()
            except SandboxUnavailable as e:
                raise InvalidField(field, str(e)) from None
        env = {**inherited_environment(), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        # Beside the upload: the files are linked into it, not copied.
        beside = Path(probe.symbol).parent
        with tempfile.TemporaryDirectory(prefix="digits-import-", dir=beside) as scratch:
            folder = Path(scratch)
            if self.confiner is not None and self.confiner.on:
                self.confiner.prepare(folder)
            probe = msgspec.structs.replace(
                probe,
                cpu_seconds=self.cpu_seconds,
                symbol=self._stage(Path(probe.symbol), folder / "net-symbol.json"),
                params=self._stage(Path(probe.params), folder / "net.params"),
            )
            child = await spawn(
                self.confiner,
                [sys.executable, "-m", "digits_trainer.importer"],
                folder,
                env,
                self.limits,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                out = await asyncio.wait_for(
                    child.exchange(msgspec.json.encode(probe)), self.wall_seconds
                )
            except TimeoutError:
                raise InvalidField(
                    field, f"Loading the network took longer than {self.wall_seconds:g} s"
                ) from None
            finally:
                await child.end()
        try:
            verdict = msgspec.json.decode(out.strip().splitlines()[-1], type=Verdict)
        except (msgspec.DecodeError, IndexError):
            limit = child.returncode in (-signal.SIGKILL, -signal.SIGXCPU, 128 + signal.SIGXCPU)
            cause = f" (over {self.cpu_seconds} s of CPU time?)" if limit else ""
            raise InvalidField(
                field, f"Loading the network stopped with exit code {child.returncode}{cause}"
            ) from None
        if verdict.error:
            raise InvalidField(field, verdict.error)
        return verdict

    def _stage(self, source: Path, target: Path) -> str:
        """An uploaded file linked (else copied) into the child's folder, its only world, by
        its name there; the original path when the child is not confined."""
        if self.confiner is None or not self.confiner.on:
            return str(source)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        self.confiner.share(target)
        return target.name


def _reason(error: BaseException) -> str:
    """MXNet's useful line (its messages start with a C++ traceback header)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    name = type(error).__name__
    return (text if text.startswith(name) else f"{name}: {text}")[:400]


def probe(request: Probe) -> Verdict:
    """Load and run the network on one zero batch; then try the fine-tuning source."""
    import warnings

    import mxnet as mx
    from mxnet import gluon

    shape = tuple(request.input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            net = gluon.SymbolBlock.imports(request.symbol, ["data"], request.params)
            out = net(mx.nd.zeros((1, *shape)))
        except BaseException as e:  # noqa: BLE001 - every failure is the answer
            return Verdict(error=f"The network cannot be loaded and run: {_reason(e)}")
        if out.ndim != 2:
            return Verdict(error=f"The network's output has shape {out.shape}; expected logits")
        outputs = int(out.shape[1])
        source_ok = False
        if request.source:
            from digits_trainer.nets import Model, initializer, load_builder

            try:
                tuned = Model(load_builder(request.source), outputs, shape, None)
                tuned.initialize(initializer())  # as training does
                source_ok = tuned(mx.nd.zeros((1, *shape))).shape == (1, outputs)
            except BaseException:  # noqa: BLE001 - then the model cannot be fine-tuned, that's all
                source_ok = False
    return Verdict(outputs=outputs, source_ok=source_ok)


def main() -> int:
    """Import MXNet, then answer one Probe from stdin with one Verdict line on stdout."""
    answer = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # MXNet's own prints stay off the verdict line
    import mxnet  # noqa: F401 - its import is not counted against the CPU limit

    request = msgspec.json.decode(sys.stdin.buffer.read(), type=Probe)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = int(usage.ru_utime + usage.ru_stime) + request.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
    answer.write(msgspec.json.encode(probe(request)) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
