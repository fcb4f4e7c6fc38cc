"""Pretrained-model archives read safely, info.json checked, and a symbol rebuilt for fine-tuning."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from digits_trainer import unpack
from digits_trainer.errors import InvalidField
from digits_trainer.importer import network_source
from tests.fakes.archives import write_tgz


def test_extract_finds_info_json_at_the_top_or_in_one_wrapper_folder(tmp_path):
    """Archives written by our download (flat) and by hand (one folder around) both work."""
    flat = write_tgz(tmp_path / "a.tar.gz", {"info.json": b"{}", "w.params": b"x"})
    assert unpack.extract(flat, tmp_path / "a", 1000) == tmp_path / "a"
    wrapped = tmp_path / "b.zip"
    with zipfile.ZipFile(wrapped, "w") as zf:
        zf.writestr("model/info.json", "{}")
    assert unpack.extract(wrapped, tmp_path / "b", 1000) == tmp_path / "b" / "model"


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"../x": b"1"}, "outside the archive"),
        ({"/abs": b"1"}, "absolute path"),
        ({"a": b"1" * 2000, "info.json": b"{}"}, "size limit"),
        ({"w.params": b"1"}, "Missing info.json"),
    ],
)
def test_extract_refuses_hostile_or_incomplete_archives(tmp_path, members, reason):
    """`..`, absolute names, expansion past the limit and a missing info.json are refused."""
    path = write_tgz(tmp_path / "a.tar.gz", members)
    with pytest.raises(InvalidField, match=reason) as e:
        unpack.extract(path, tmp_path / "out", 1000)
    assert e.value.field == "archive"
    assert not (tmp_path / "x").exists()


def test_extract_refuses_something_that_is_not_an_archive(tmp_path):
    """Plain bytes are DIGITS's "Incorrect Archive Type"."""
    path = tmp_path / "a.tar.gz"
    path.write_bytes(b"hello")
    with pytest.raises(InvalidField, match="Incorrect Archive Type"):
        unpack.extract(path, tmp_path / "out", 1000)


def test_info_keys_follow_digits_and_our_preprocessing_keys(tmp_path):
    """`model file` or the legacy `network file`; dimensions, resize mode and input shape read;
    DIGITS's archive defaults (224×224×3, squash) when absent; bad values refused."""
    assert unpack.required({"network file": "n.json"}, "model file", "network file") == "n.json"
    with pytest.raises(InvalidField, match=r"Missing Key 'name' in info\.json"):
        unpack.required({}, "name")
    ours = unpack.preprocessing(
        {"image dimensions": [32, 30, 1], "image resize mode": "crop", "crop size": 24}
    )
    assert ours["input_shape"] == [1, 24, 24] and (ours["width"], ours["height"]) == (30, 32)
    assert ours["resize_mode"] == "crop"
    default = unpack.preprocessing({})
    assert default["input_shape"] == [3, 224, 224] and default["resize_mode"] == "squash"
    for bad in (
        {"image dimensions": [0, 1, 3]},
        {"image dimensions": [8, 8, 2]},
        {"image resize mode": "stretch"},
        {"image dimensions": [8, 8, 3], "input shape": [3, 9, 9]},
    ):
        with pytest.raises(InvalidField):
            unpack.preprocessing(bad)


def test_member_names_outside_the_archive_are_refused(tmp_path):
    """A file info.json names must be inside the extracted folder."""
    (tmp_path / "w.params").write_bytes(b"x")
    assert unpack.member(tmp_path, "w.params", "snapshot file") == tmp_path / "w.params"
    for name in ("../w.params", "/etc/passwd", "missing.params"):
        with pytest.raises(InvalidField):
            unpack.member(tmp_path, name, "snapshot file")
    assert unpack.optional(tmp_path, "missing.npy") is None


def test_rebuilt_symbol_fine_tunes_every_layer_but_the_last(tmp_path):
    """The Gluon source made from an exported LeNet builds for another class count, drops the
    old mean, and keeps every saved weight except the re-sized last layer."""
    import mxnet as mx

    from digits_trainer.nets import build_model, initializer, load_matching
    from digits_trainer.networks import source

    net = build_model(source("lenet"), 3, (1, 28, 28), np.full((1, 28, 28), 9.0, np.float32))
    net.initialize(initializer())
    net.hybridize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.export(str(tmp_path / "n"), epoch=1)
    code = network_source("x", (tmp_path / "n-symbol.json").read_text())
    assert "build_network" in code
    tuned = build_model(code, 5, (1, 28, 28), None)
    tuned.initialize(initializer())  # Xavier, as training: biases must start at zero
    assert tuned(mx.nd.zeros((2, 1, 28, 28))).shape == (2, 5)
    fresh = load_matching(tuned, str(tmp_path / "n-0001.params"), [mx.cpu()])
    assert fresh == ["model_lenet_dense1_weight", "model_lenet_dense1_bias"]
    assert "model_preprocess_mean" not in json.dumps(tuned(mx.sym.var("data")).tojson())
    assert network_source("x", '{"nodes": [{"op": "null", "name": "data"}]}') == ""
