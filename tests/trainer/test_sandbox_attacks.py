"""User code under bubblewrap: each attack a custom network can make fails, at test-build time
and at training time; benign code builds and trains; without a sandbox user code is refused."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from digits_proto import codec, subjects
from digits_proto.base import JobStatus
from digits_proto.models import CreateModel, TrainSpec, VisualizeNetwork
from digits_proto.replies import Accepted
from digits_proto.runtime import request
from digits_trainer.confine import Confiner, Limits
from digits_trainer.errors import InvalidField
from digits_trainer.sandbox import Sandbox
from tests.fakes.principals import ALICE
from tests.trainer.test_service import (
    FakeBroker,
    add_dataset,
    create,
    status_is,
    stored_log,
    trainer,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)

# Each attack returns what it got (an escape) or raises (blocked). The network prints one line
# per attack and raises ESCAPED if any got through: a check then answers 400, a job fails.
ATTACKS = {
    "run_as_root": (
        "if os.getuid() == 0 or os.geteuid() == 0:\n"
        "            return 'uid 0'\n"
        "        raise PermissionError(f'uid {os.getuid()}')"
    ),
    "read_shadow": "return open('/etc/shadow').read()[:40]",
    "list_data_dir": "return os.listdir(DATA)",
    "read_parent_environ": "return open(f'/proc/{os.getppid()}/environ', 'rb').read()[:80]",
    "any_environ_with_secrets": (
        "found = []\n"
        "        for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "            try:\n"
        "                env = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "            except OSError:\n"
        "                continue\n"
        "            if b'DIGITS_' in env or b'NATS' in env:\n"
        "                found.append(pid)\n"
        "        if not found:\n"
        "            raise PermissionError('no environment with DIGITS_/NATS readable')\n"
        "        return found"
    ),
    "connect_to_nats": (
        "s = socket.create_connection(('127.0.0.1', PORT), timeout=2)\n        return s.recv(64)"
    ),
    "write_outside": (
        "for target in (os.path.join(DATA, 'pwned'), os.path.join(sys.prefix, 'pwned'),\n"
        "               os.path.join(os.getcwd(), 'pwned')):\n"
        "            try:\n"
        "                open(target, 'w').write('x')\n"
        "                return target\n"
        "            except OSError:\n"
        "                pass\n"
        "        raise PermissionError('no write outside work/')"
    ),
    "outlive_as_session_leader": (
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', MARK],\n"
        "                         start_new_session=True, stdin=subprocess.DEVNULL,\n"
        "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "        raise PermissionError('started; it must be gone when the child ends')"
    ),
}

TEMPLATE = """
import os, socket, subprocess, sys
from mxnet.gluon import nn

DATA, PORT, MARK = @DATA@, @PORT@, @MARK@


def attack():
    @BODY@


def build_network(classes, input_shape):
    try:
        got = attack()
    except Exception as e:
        print('blocked: @NAME@:', type(e).__name__, flush=True)
    else:
        raise RuntimeError('ESCAPED @NAME@: ' + repr(got)[:200])
    net = nn.HybridSequential()
    net.add(nn.Flatten(), nn.Dense(classes))
    return net
"""


def attack_source(name: str, data: Path, port: int, mark: str) -> str:
    """A custom network that makes one attack while it builds."""
    values = {"@DATA@": repr(str(data)), "@PORT@": str(port), "@MARK@": repr(mark)}
    body = ATTACKS[name].replace("\n        ", "\n    ")  # written as if in a method
    values |= {"@BODY@": body, "@NAME@": name}
    source = TEMPLATE
    for key, value in values.items():
        source = source.replace(key, value)
    return source


def all_attacks_source(data: Path, port: int, mark: str) -> str:
    """A custom network that makes every attack (one training job tries them all)."""
    parts = [
        attack_source(name, data, port, mark)
        .replace("def build_network", f"def build_{i}")
        .replace("attack()", f"attack_{i}()")
        for i, name in enumerate(ATTACKS)
    ]
    merged = "\n".join(parts)
    calls = "\n".join(f"    build_{i}(classes, input_shape)" for i in range(len(parts)))
    return f"{merged}\n\ndef build_network(classes, input_shape):\n{calls}\n" + (
        "    return build_0(classes, input_shape)\n"
    )


def processes_with(mark: str) -> list[int]:
    """Pids whose command line carries `mark` (the session leader an attack started)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if mark.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(int(pid))
    return pids


def data_dir(tmp_path: Path) -> Path:
    """A data directory with something to list and read."""
    data = tmp_path / "data"
    (data / "trainer").mkdir(parents=True)
    (data / "secret.db").write_text("alice's password")
    return data


def nats_port(nats_url: str) -> int:
    return urlparse(nats_url).port or 4222


@contextlib.asynccontextmanager
async def sandbox_for(data: Path, mode: str = "bwrap", bwrap: str = "/usr/bin/bwrap"):
    """A network-check sandbox as the service builds it (probed at start)."""
    confiner = Confiner(mode, bwrap, data)
    await confiner.probe()
    sandbox = Sandbox(60, 20, confiner, Limits(memory_mb=4096, processes=1024, file_mb=64))
    try:
        yield sandbox
    finally:
        await sandbox.close()


@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_each_attack_fails_at_test_build(name, nats_url, tmp_path):
    """The network builds (so the attack raised inside the sandbox), nothing was written
    outside, and no process it started is left."""
    data = data_dir(tmp_path)
    mark = f"digits-attack-{uuid.uuid4().hex}"
    async with sandbox_for(data) as sandbox:
        graph = await sandbox.check(
            attack_source(name, data, nats_port(nats_url), mark), 10, [1, 8, 8]
        )
    assert graph.total_params > 0
    assert not (data / "pwned").exists()
    assert not processes_with(mark), "a session leader outlived the sandbox"


async def test_the_attacks_succeed_unconfined_so_the_tests_can_fail(nats_url, tmp_path):
    """With the sandbox off (the admin's dangerous opt-out) the same code escapes: reading the
    parent's environment, listing the data directory, writing into it, reaching NATS, and a
    session leader outliving the check. This is what the tests above would see if the sandbox
    did nothing."""
    data = data_dir(tmp_path)
    mark = f"digits-attack-{uuid.uuid4().hex}"
    escaped = []
    try:
        async with sandbox_for(data, mode="off") as sandbox:
            for name in ATTACKS:
                source = attack_source(name, data, nats_port(nats_url), mark)
                with contextlib.suppress(InvalidField):
                    await sandbox.check(source, 10, [1, 8, 8])
                    continue
                escaped.append(name)
        expected = {"list_data_dir", "read_parent_environ", "connect_to_nats", "write_outside"}
        if os.geteuid() == 0:
            expected |= {"run_as_root", "read_shadow"}
        assert expected <= set(escaped)
        assert processes_with(mark), "unconfined, the session leader survives"
    finally:
        for pid in processes_with(mark):  # ours: started by the code this test ran
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_every_attack_fails_at_training_time_and_the_job_trains(nats_url, js, nc, tmp_path):
    """One custom network makes every attack while it builds, in the create-time check and
    again in the training child: the job trains to Done, its log says each was blocked,
    nothing was written outside and no process it started is left."""
    await FakeBroker().serve(nc)
    data = tmp_path / "data"
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    mark = f"digits-attack-{uuid.uuid4().hex}"
    source = all_attacks_source(data, nats_port(nats_url), mark)
    spec = TrainSpec(method="custom", custom_network=source, train_epochs=1, random_seed=1)
    command = CreateModel(name="attacks", dataset_id=dataset_id, spec=spec, principal=ALICE)
    async with trainer(nats_url, data, warm=True):
        body, rejected = await request(nc, subjects.CMD_MODELS_CREATE, command, timeout=60)
        assert rejected is None, rejected
        reply = codec.command_reply.decode(body)
        assert isinstance(reply, Accepted)
        await wait_for(js, reply.id, status_is(JobStatus.DONE), timeout=120)
    log = await stored_log(js, reply.id)  # the local folder goes when the job ends
    for name in ATTACKS:
        assert f"blocked: {name}:" in log, name
    assert not (data / "pwned").exists()
    assert not processes_with(mark), "a session leader outlived the training child"


async def test_without_a_sandbox_custom_networks_are_refused_and_standard_ones_train(
    nats_url, js, nc, tmp_path
):
    """bwrap missing: the service starts, a custom network (create or visualize) is a 400 on
    custom_network naming the cause, a standard network still trains."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    benign = "from mxnet.gluon import nn\n\ndef build_network(classes, input_shape):\n"
    benign += "    return nn.Dense(classes)\n"
    async with trainer(nats_url, tmp_path / "data", sandbox_bwrap="/nonexistent/bwrap"):
        spec = TrainSpec(method="custom", custom_network=benign, train_epochs=1)
        command = CreateModel(name="x", dataset_id=dataset_id, spec=spec, principal=ALICE)
        _, rejected = await request(nc, subjects.CMD_MODELS_CREATE, command)
        assert rejected is not None and (rejected.code, rejected.field) == (400, "custom_network")
        assert "sandbox is unavailable" in rejected.message
        assert "/nonexistent/bwrap" in rejected.message
        look = VisualizeNetwork(custom_network=benign, principal=ALICE)
        _, rejected = await request(nc, subjects.CMD_MODELS_VISUALIZE, look)
        assert rejected is not None and (rejected.code, rejected.field) == (400, "custom_network")
        reply = await create(nc, dataset_id)
        await wait_for(js, reply.id, status_is(JobStatus.DONE), timeout=90)


async def test_one_users_slow_checks_do_not_hold_up_anothers(tmp_path):
    """Alice sends six networks that sleep 15 s: one runs, four wait, the sixth is a 429. Bob's
    check answers while Alice's first is still sleeping."""
    slow = "import time\nfrom mxnet.gluon import nn\n\ndef build_network(classes, input_shape):\n"
    slow += "    time.sleep(15)\n    return nn.Dense(classes)\n"
    benign = "from mxnet.gluon import nn\n\ndef build_network(classes, input_shape):\n"
    benign += "    return nn.Dense(classes)\n"
    async with sandbox_for(data_dir(tmp_path)) as sandbox:
        alices = [
            asyncio.create_task(sandbox.check(slow + f"# {i}\n", 10, [1, 8, 8], "alice"))
            for i in range(6)
        ]
        await asyncio.sleep(0)  # every task has queued (or been refused)
        refused = [t for t in alices if t.done()]
        assert len(refused) == 1
        error = refused[0].exception()
        assert error is not None and getattr(error, "code", None) == 429
        graph = await sandbox.check(benign, 10, [1, 8, 8], "bob")
        assert graph.total_params > 0
        # Alice's first is still sleeping: Bob did not wait behind it (a single queue, or
        # Alice's five taking every child, would have made him).
        assert not any(t.done() for t in alices if t not in refused), "Bob waited for Alice"
        for task in alices:
            task.cancel()
        await asyncio.gather(*alices, return_exceptions=True)


async def test_fine_tuning_from_source_is_refused_without_a_sandbox(nats_url, js, nc, tmp_path):
    """A job trained from custom source (sandbox working); then, on a trainer whose bwrap is
    missing, fine-tuning from it (its author's source) is a 400 on custom_network, while
    fine-tuning from a standard job still trains."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    benign = "from mxnet.gluon import nn\n\ndef build_network(classes, input_shape):\n"
    benign += "    net = nn.HybridSequential()\n    net.add(nn.Flatten(), nn.Dense(classes))\n"
    benign += "    return net\n"
    spec = TrainSpec(method="custom", custom_network=benign, train_epochs=1, random_seed=1)
    command = CreateModel(name="source", dataset_id=dataset_id, spec=spec, principal=ALICE)
    async with trainer(nats_url, tmp_path / "data", warm=True):
        body, rejected = await request(nc, subjects.CMD_MODELS_CREATE, command, timeout=60)
        assert rejected is None, rejected
        custom = codec.command_reply.decode(body)
        standard = await create(nc, dataset_id)
        for job in (custom, standard):
            await wait_for(js, job.id, status_is(JobStatus.DONE), timeout=120)
    async with trainer(nats_url, tmp_path / "data2", sandbox_bwrap="/nonexistent/bwrap"):
        tune = TrainSpec(method="previous", previous_network=custom.id, previous_snapshot=1.0)
        command = CreateModel(name="tune", dataset_id=dataset_id, spec=tune, principal=ALICE)
        _, rejected = await request(nc, subjects.CMD_MODELS_CREATE, command)
        assert rejected is not None and (rejected.code, rejected.field) == (400, "custom_network")
        assert "sandbox is unavailable" in rejected.message
        reply = await create(
            nc, dataset_id, method="previous", previous_network=standard.id, previous_snapshot=1.0
        )
        await wait_for(js, reply.id, status_is(JobStatus.DONE), timeout=90)


async def test_a_queued_custom_job_fails_on_a_trainer_without_a_sandbox(nats_url, js, nc, tmp_path):
    """Accepted where the sandbox worked, the job waits for devices; the trainer that takes it
    has no bwrap: the job fails naming the cause, its source never ran unconfined."""
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    mark = f"digits-attack-{uuid.uuid4().hex}"
    source = attack_source("write_outside", tmp_path / "data2", nats_port(nats_url), mark)
    spec = TrainSpec(method="custom", custom_network=source, train_epochs=1, random_seed=1)
    command = CreateModel(name="queued", dataset_id=dataset_id, spec=spec, principal=ALICE)
    async with trainer(nats_url, tmp_path / "data", warm=True):
        body, rejected = await request(nc, subjects.CMD_MODELS_CREATE, command, timeout=60)
        assert rejected is None, rejected
        reply = codec.command_reply.decode(body)
        await wait_for(js, reply.id, status_is(JobStatus.WAITING))  # no gpu-broker yet
    await FakeBroker().serve(nc)
    async with trainer(nats_url, tmp_path / "data2", sandbox_bwrap="/nonexistent/bwrap"):
        events = await wait_for(js, reply.id, status_is(JobStatus.ERROR), timeout=60)
    assert "sandbox is unavailable" in events[-1].error
    assert not (tmp_path / "data2" / "pwned").exists()
