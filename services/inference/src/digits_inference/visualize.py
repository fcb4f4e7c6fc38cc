"""See inside an exported network: every layer's activation and weights, and a Grad-CAM map."""

from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from digits_inference import tiles
from digits_proto.inference import ArrayStats, LayerVisual, Visualizations

BINS = 20
EPS_NAME = "__gradcam_eps"  # a zero input added to the Grad-CAM layer; its gradient is dA
LEARNED = ("weight", "bias", "gamma", "beta")  # constants (the mean) are parameters, not learned


class Explainer:
    """One snapshot's network rebuilt so that a forward pass yields every layer's output.

    The symbol is rewritten (JSON graph) to add a zero tensor to the last spatial layer's output:
    the gradient of the top logit with respect to that tensor is the gradient with respect to the
    layer's activation, which Grad-CAM weights the feature maps with.
    """

    def __init__(self, symbol_file: Path, params_file: Path, input_shape: tuple[int, ...]):
        graph = json.loads(Path(symbol_file).read_text())
        self.params = {
            k.split(":", 1)[-1]: v.asnumpy() for k, v in mx.nd.load(str(params_file)).items()
        }
        nodes = graph["nodes"]
        self.ops = [(n["name"], n["op"]) for n in nodes if n["op"] != "null"]
        self.inputs = {
            n["name"]: [nodes[i[0]]["name"] for i in n["inputs"] if nodes[i[0]]["op"] == "null"]
            for n in nodes
            if n["op"] != "null"
        }
        plain = mx.sym.load_json(json.dumps(graph))
        shapes = dict(
            zip(plain.get_internals().list_outputs(), _out_shapes(plain, input_shape), strict=False)
        )
        spatial = [name for name, _ in self.ops if len(shapes.get(f"{name}_output", ())) == 4]
        self.cam_layer = spatial[-1] if spatial else ""
        head = plain
        if self.cam_layer:
            graph = _add_probe(graph, self.cam_layer)
            head = mx.sym.load_json(json.dumps(graph))
        internals = head.get_internals()
        outputs = [internals[f"{name}_output"] for name, _ in self.ops] + [head]
        inputs = [mx.sym.var("data")] + ([mx.sym.var(EPS_NAME)] if self.cam_layer else [])
        self.cam_shape = shapes.get(f"{self.cam_layer}_output")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot decide type", category=UserWarning)
            self.net = gluon.SymbolBlock(mx.sym.Group(outputs), inputs)
        for name, param in self.net.collect_params().items():
            if name in self.params:
                param._load_init(mx.nd.array(self.params[name]), mx.cpu())

    def explain(self, batch: np.ndarray, labels: tuple[str, ...]) -> Visualizations:
        """Every layer's activation and weights for a 1×C×H×W batch, and Grad-CAM of the top class."""
        data = mx.nd.array(batch, dtype=np.float32)
        args = [data]
        if self.cam_layer:
            eps = mx.nd.zeros(self.cam_shape)
            eps.attach_grad()
            args.append(eps)
            with autograd.record():
                outs = self.net(*args)
                logits = outs[-1].reshape((1, -1))
                top = int(logits[0, : max(1, len(labels))].argmax().asscalar())
                logits[0, top].backward()
        else:
            outs = self.net(*args)
            top = int(outs[-1].reshape((1, -1))[0, : max(1, len(labels))].argmax().asscalar())
        activations = [o.asnumpy() for o in outs[:-1]]
        layers = [LayerVisual(name="data", op="input", activation=stats(batch))]
        total = 0
        for (name, op), act in zip(self.ops, activations, strict=False):
            learned = [p for p in self.inputs[name] if p in self.params and p.endswith(LEARNED)]
            weights = None
            if learned:
                count = int(sum(self.params[p].size for p in learned))
                total += count
                main = next((p for p in learned if p.endswith("weight")), learned[0])
                weights = stats(self.params[main], parameters=count, picture=op != "FullyConnected")
            layers.append(LayerVisual(name=name, op=op, activation=stats(act), weights=weights))
        gradcam = ""
        if self.cam_layer:
            grads = eps.grad.asnumpy()[0]
            feature = activations[[n for n, _ in self.ops].index(self.cam_layer)][0]
            cam = np.maximum((grads.mean(axis=(1, 2))[:, None, None] * feature).sum(axis=0), 0)
            gradcam = data_url(tiles.overlay_png(batch[0], cam))
        label = labels[top] if top < len(labels) else str(top)
        return Visualizations(
            layers=layers,
            total_parameters=total,
            gradcam=gradcam,
            gradcam_layer=self.cam_layer,
            gradcam_label=label if self.cam_layer else "",
        )


def stats(array: np.ndarray, parameters: int = 0, picture: bool = True) -> ArrayStats:
    """Shape, mean, std, range, a 20-bin histogram and (optionally) the tiled picture."""
    values = np.asarray(array, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        finite = np.zeros(1)
    counts, edges = np.histogram(finite, bins=BINS)
    image = tiles.tile_png(values) if picture else None
    return ArrayStats(
        shape=list(values.shape),
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite.min()),
        max=float(finite.max()),
        histogram_counts=[int(c) for c in counts],
        histogram_edges=[float(e) for e in edges],
        image=data_url(image) if image else "",
        parameters=parameters,
    )


def data_url(png: bytes) -> str:
    """A PNG as a data URL (pages show it as is; the JSON carries it too)."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _out_shapes(symbol: Any, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    _, shapes, _ = symbol.get_internals().infer_shape_partial(data=(1, *input_shape))
    return [tuple(s) if s else () for s in shapes]


def _add_probe(graph: dict[str, Any], layer: str) -> dict[str, Any]:
    """The graph with `layer`'s output replaced, for its consumers, by `layer + EPS_NAME`."""
    nodes = graph["nodes"]
    t = next(i for i, n in enumerate(nodes) if n["name"] == layer)
    eps = {"op": "null", "name": EPS_NAME, "inputs": []}
    add = {"op": "elemwise_add", "name": f"{EPS_NAME}_add", "inputs": [[t, 0, 0], [t + 1, 0, 0]]}
    remap = {i: (i if i <= t else i + 2) for i in range(len(nodes))}

    def target(ref: list[int]) -> list[int]:
        if ref[0] == t and ref[1] == 0:
            return [t + 2, 0, 0]
        return [remap[ref[0]], *ref[1:]]

    moved = []
    for i, node in enumerate(nodes):
        copy = dict(node)
        if i > t:
            copy["inputs"] = [target(r) for r in node["inputs"]]
        moved.append(copy)
    new_nodes = [*moved[: t + 1], eps, add, *moved[t + 1 :]]
    out = {k: v for k, v in graph.items() if k != "node_row_ptr"}
    out["nodes"] = new_nodes
    out["arg_nodes"] = [i for i, n in enumerate(new_nodes) if n["op"] == "null"]
    out["heads"] = [target(h) for h in graph["heads"]]
    return out
