"""The sandbox remembers networks that built, so a sweep or a clone does not test-build again."""

from __future__ import annotations

import pytest

from digits_trainer.errors import InvalidField
from digits_trainer.sandbox import Sandbox

NETWORK = """\
from mxnet.gluon import nn


def build_network(classes, input_shape):
    net = nn.HybridSequential()
    net.add(nn.Dense(classes))
    return net
"""


async def test_a_network_that_built_is_not_built_again_but_a_failure_is() -> None:
    """Same code, classes and shape: the first graph comes back without a child; errors re-run."""
    sandbox = Sandbox(wall_seconds=120)
    try:
        graph = await sandbox.check(NETWORK, 3, [1, 8, 8])
        probes: list[tuple[int, list[int]]] = []

        async def refuse(code: str, classes: int, shape: list[int]):
            probes.append((classes, shape))
            raise InvalidField("custom_network", "probe ran")

        sandbox._probe = refuse  # type: ignore[method-assign]
        assert await sandbox.check(NETWORK, 3, [1, 8, 8]) == graph
        assert probes == []
        with pytest.raises(InvalidField):
            await sandbox.check(NETWORK, 4, [1, 8, 8])  # other classes: built again
        with pytest.raises(InvalidField):
            await sandbox.check(NETWORK, 4, [1, 8, 8])  # and a failure is never remembered
        assert probes == [(4, [1, 8, 8]), (4, [1, 8, 8])]
    finally:
        await sandbox.close()
