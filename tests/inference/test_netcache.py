"""The loaded-network cache: least recently used evicted first, bounded by parameter bytes."""

from __future__ import annotations

import mxnet as mx
import numpy as np

from digits_inference.netcache import NetCache, param_bytes
from digits_inference.predictor import load_net
from digits_inference.settings import Settings
from tests.inference.nets import TinyConvNet, export_net


def test_param_bytes_counts_every_parameter_of_a_loaded_net(tmp_path) -> None:
    """An exported net's estimate is the float32 size of its parameters (mean included)."""
    symbol, params = export_net(tmp_path, [0.0, 0.5, 1.0], (3, 8, 8))
    net = load_net(symbol, params)
    expected = sum(p.data().size * 4 for p in net.collect_params().values())
    assert param_bytes(net) == expected == (3 * 8 * 8 + 3) * 4


def test_cache_evicts_the_least_recently_used_net_past_its_byte_bound(tmp_path) -> None:
    """With room for two nets' bytes, a third load evicts the one used least recently."""
    nets = {}
    for name in "abc":
        symbol, params = export_net(tmp_path / name, [0.0, 1.0], (3, 16, 16))
        nets[name] = (symbol, params)
    one = param_bytes(load_net(*nets["a"]))
    cache = NetCache(100, max_bytes=2 * one + one // 2)
    for name in ["a", "b", "a", "c"]:  # b is the least recently used when c arrives
        cache.get(name, lambda name=name: load_net(*nets[name]))
    assert cache.keys() == ["a", "c"]
    assert cache.bytes == 2 * one and cache.evictions == 1 and cache.loads == 3
    cache.get("b", lambda: load_net(*nets["b"]))  # b again: a (least recent now) goes
    assert cache.keys() == ["c", "b"] and cache.loads == 4


def test_a_net_larger_than_the_whole_bound_is_still_kept_alone() -> None:
    """The entry just loaded always stays (a request must use it); older ones make room."""
    sizes = {"small": 10, "huge": 1000}
    cache = NetCache(100, max_bytes=100, size_of=lambda key: sizes[key])
    cache.get("small", lambda: "small")
    cache.get("huge", lambda: "huge")
    assert cache.keys() == ["huge"] and cache.bytes == 1000


def test_cache_drop_forgets_the_nets_of_one_device() -> None:
    """Dropping by key (e.g. every net on a GPU whose lease ended) frees their bytes."""
    cache = NetCache(10, max_bytes=0, size_of=lambda net: 7)
    for key in [("m", "gpu(0)"), ("m", "cpu(0)"), ("n", "gpu(0)")]:
        cache.get(key, lambda: np.zeros(1))
    cache.drop(lambda key: key[-1] == "gpu(0)")
    assert cache.keys() == [("m", "cpu(0)")] and cache.bytes == 7


def test_cache_bound_is_read_from_digits_inference_cache_mb() -> None:
    """DIGITS_INFERENCE_CACHE_MB sets the byte bound (default 1024 MB)."""
    from digits_proto.runtime import env_settings

    assert Settings().cache_mb == 1024
    assert env_settings(Settings, "inference", {"DIGITS_INFERENCE_CACHE_MB": "64"}).cache_mb == 64


def test_tiny_conv_net_weights_are_counted() -> None:
    """A net with conv and dense layers: weights and biases all count."""
    net = TinyConvNet(3, (3, 12, 12))
    net.initialize()
    net.hybridize()
    net(mx.nd.zeros((1, 3, 12, 12)))
    expected = sum(int(np.prod(p.shape)) * 4 for p in net.collect_params().values())
    assert param_bytes(net) == expected > 0
