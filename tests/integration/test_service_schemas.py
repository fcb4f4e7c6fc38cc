"""schemathesis against every backend service's `/schema`: generated requests never get a 500.

Each service runs in this process, on its own event loop in a thread (schemathesis calls are
synchronous), against the test's real nats-server, with its HTTP app on a free port. Requests
carry the operator token, so operations are exercised too (random ids: 404s, never 500s).

Adding a service is one entry in `SERVICES`: a function `(nats_url, data_dir) -> (host, main)`
returning the service's `ServiceHost` and the coroutine that runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from digits_proto import subjects
from digits_proto.runtime import ServiceHost

TOKEN = "schemathesis-ops-token"
EXAMPLES = 25  # generated requests per operation (2 cores: enough to find a 500, not a soak)

Started = tuple[ServiceHost, Coroutine[Any, Any, None]]


def gpu_broker(nats_url: str, data_dir: Path) -> Started:
    from digits_gpu_broker import app
    from digits_gpu_broker.settings import Settings

    settings = Settings(nats_url=nats_url, node_id="n1", port=0, use_nvml=False, cpu_slots=2)
    host = ServiceHost(subjects.SERVICE_GPU_BROKER, nats_url, 0, data_dir=data_dir)
    return host, app.serve(host, settings, None)


def inference(nats_url: str, data_dir: Path) -> Started:
    from digits_inference import app
    from digits_inference.settings import Settings

    settings = Settings(nats_url=nats_url, data_dir=str(data_dir), port=0)
    host = ServiceHost(subjects.SERVICE_INFERENCE, nats_url, 0, data_dir=data_dir)
    return host, app.main(settings, host)


def trainer(nats_url: str, data_dir: Path) -> Started:
    from digits_trainer import app
    from digits_trainer.settings import Settings

    settings = Settings(
        nats_url=nats_url, data_dir=str(data_dir), port=0, sandbox_warm=False, warm_child=False
    )
    host = ServiceHost(subjects.SERVICE_TRAINER, nats_url, 0, data_dir=data_dir)
    return host, app.main(settings, host)


def datasets(nats_url: str, data_dir: Path) -> Started:
    from digits_datasets import app
    from digits_datasets.settings import Settings

    settings = Settings(nats_url=nats_url, data_dir=str(data_dir), port=0, build_workers=1)
    host = ServiceHost(subjects.SERVICE_DATASETS, nats_url, 0, data_dir=data_dir)
    return host, app.main(settings, host)


SERVICES: dict[str, Callable[[str, Path], Started]] = {
    "gpu-broker": gpu_broker,
    "inference": inference,
    "trainer": trainer,
    "datasets": datasets,
}


@contextlib.contextmanager
def serving(started: Started, timeout: float = 60.0) -> Iterator[str]:
    """Run the service on a loop of its own in a thread; yields its base URL once ready."""
    host, main = started
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(main)
        except BaseException as e:  # noqa: BLE001 - reported by the waiting test
            failure.append(e)

    thread = threading.Thread(target=run, name="service", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not host.ready:
        assert thread.is_alive(), f"the service stopped while starting: {failure}"
        assert time.monotonic() < deadline, "the service did not become ready"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{host.bound_port}"
    finally:
        loop.call_soon_threadsafe(host.stop.set)
        thread.join(timeout=30)
        loop.close()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_generated_request_gets_a_server_error(
    service: str, nats_url: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DIGITS_OPS_TOKEN", TOKEN)
    with serving(SERVICES[service](nats_url, tmp_path / "data")) as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/schema")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 4, [op.label for op in operations]
        errors: list[str] = []
        for operation in operations:

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = case.call(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
                if response.status_code >= 500:
                    errors.append(f"{case.method} {case.formatted_path}: {response.status_code}")

            check()
        assert not errors, errors
