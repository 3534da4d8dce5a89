"""Feature sets of the CLIP encoder and the ONNX graph edit that exposes intermediate blocks.

A feature set is a "+"-joined list of components, concatenated in that order:
`clsN` (N = 1..12) is the CLS token of the residual stream after transformer block N (768 values;
`cls12` is the last layer, before the final LayerNorm), `embed` is CLIP's projected image
embedding (512 values, not L2-normalised). Examples: "cls12", "embed", "cls4+cls8+cls12".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEPTH = 12
WIDTH = 768
EMBED_DIM = 512
INPUT_NAME = "pixel_values"
EMBED_OUTPUT = "image_embeds"
TOKENS_OUTPUT = "onnx::Gather_1524"  # [B, 197, 768]: the residual stream after the last block


def block_output(block: int) -> str:
    """Graph tensor holding the residual stream after transformer block `block` (1-based)."""
    if block == DEPTH:
        return TOKENS_OUTPUT
    return f"/vision_model/encoder/layers.{block - 1}/Add_1_output_0"


@dataclass(frozen=True)
class FeatureSet:
    components: tuple[str, ...]

    @classmethod
    def parse(cls, name: str) -> FeatureSet:
        parts = tuple(p.strip().lower() for p in str(name).split("+"))
        for part in parts:
            if component_dim(part) is None:
                raise ValueError(
                    f"unknown CLIP feature {part!r} in {name!r}; use cls1..cls{DEPTH} or embed, "
                    "joined by '+' (e.g. cls4+cls8+cls12)"
                )
        if len(set(parts)) != len(parts):
            raise ValueError(f"feature set {name!r} names a component twice")
        return cls(parts)

    @property
    def name(self) -> str:
        return "+".join(self.components)

    @property
    def dim(self) -> int:
        return sum(component_dim(c) or 0 for c in self.components)

    @property
    def needs_graph_edit(self) -> bool:
        """True when a component is an intermediate block (the stock graph outputs only the last)."""
        return any(c not in ("embed", f"cls{DEPTH}") for c in self.components)

    def columns(self, component: str) -> slice:
        """Where `component` lies in this set's concatenated feature vector."""
        start = 0
        for c in self.components:
            width = component_dim(c) or 0
            if c == component:
                return slice(start, start + width)
            start += width
        raise ValueError(f"feature set {self.name!r} has no component {component!r}")


def component_dim(component: str) -> int | None:
    if component == "embed":
        return EMBED_DIM
    if component.startswith("cls") and component[3:].isdigit() and 1 <= int(component[3:]) <= DEPTH:
        return WIDTH
    return None


def select_features(features: np.ndarray, have: str, want: str) -> np.ndarray:
    """Columns of feature set `want` taken out of an array encoded with the superset `have`."""
    src, dst = FeatureSet.parse(have), FeatureSet.parse(want)
    return np.concatenate([features[:, src.columns(c)] for c in dst.components], axis=1)


def graph_with_cls_outputs(path: Path) -> bytes:
    """The encoder graph with one extra output per block, `clsN` = CLS token after block N.

    Each is a Gather of token 0 from the block's residual output, so the stock outputs are
    computed exactly as before. Needs the `onnx` package (in the `train` extra).
    """
    model = _load_onnx(path)
    from onnx import TensorProto, helper

    graph = model.graph
    graph.initializer.append(helper.make_tensor("cls_token_index", TensorProto.INT64, [], [0]))
    for block in range(1, DEPTH + 1):
        out = f"cls{block}"
        graph.node.append(
            helper.make_node("Gather", [block_output(block), "cls_token_index"], [out], axis=1, name=out)
        )
        graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", WIDTH]))
    return model.SerializeToString()


def _load_onnx(path: Path) -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise RuntimeError(
            f"{path}: CLIP features from intermediate blocks need the onnx package (`pip install onnx`); "
            "cls12 and embed work without it"
        ) from exc
    return onnx.load(str(path))


def _consumers(graph: Any) -> dict[str, list[Any]]:
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def quantized_linears(model: Any) -> dict[str, dict[str, Any]]:
    """{layer: {"q": int8 [in, out], "scale": [out], "zero_point": [out], "node": MatMulInteger}} for
    every int8 linear layer of an onnx.ModelProto, named by the bias `Add` that follows it."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    users = _consumers(model.graph)
    layers = {}
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in inits:
            continue
        base = node.input[1].removesuffix("_quantized")
        layers[_layer_name(node, users, inits)] = {
            "q": numpy_helper.to_array(inits[node.input[1]]),
            "scale": numpy_helper.to_array(inits[base + "_scale"]),
            "zero_point": numpy_helper.to_array(inits[node.input[3]]),
            "node": node,
        }
    return layers


def _layer_name(node: Any, users: dict[str, list[Any]], inits: dict[str, Any]) -> str:
    """The layer a MatMulInteger belongs to: its bias's name (MatMulInteger -> Cast -> Mul -> Add)."""
    frontier = list(node.output)
    for _ in range(3):
        nxt = []
        for tensor in frontier:
            for user in users.get(tensor, []):
                bias = [i for i in user.input if i in inits and i.endswith(".bias")]
                if user.op_type == "Add" and bias:
                    return bias[0].removesuffix(".bias")
                nxt.extend(user.output)
        frontier = nxt
    # No bias (CLIP's visual projection): "/visual_projection/MatMul_quant" -> "visual_projection".
    return ".".join(p for p in node.name.split("/")[:-1] if p)


def dequantize(layer: dict[str, Any]) -> np.ndarray:
    """fp32 weight in ONNX layout [in, out]: W = scale * (q - zero_point), per output channel."""
    q = layer["q"].astype(np.float32) - layer["zero_point"].astype(np.float32)[None, :]
    return q * layer["scale"].astype(np.float32)[None, :]


def float_graph(path: Path) -> bytes:
    """The encoder with every int8 MatMul replaced by an fp32 MatMul on its dequantised weights and
    unquantised activations, plus the `clsN` outputs: the exact reference for the PyTorch rebuild."""
    from onnx import helper, numpy_helper

    model = onnx_from_bytes(graph_with_cls_outputs(path))
    graph = model.graph
    users, producer = _consumers(graph), {o: n for n in graph.node for o in n.output}
    replace = {}
    for name, layer in quantized_linears(model).items():
        node = layer["node"]
        x = producer[node.input[0]].input[0]  # the float input of DynamicQuantizeLinear
        scaled = users[users[node.output[0]][0].output[0]][0]  # MatMulInteger -> Cast -> Mul
        graph.initializer.append(numpy_helper.from_array(dequantize(layer), f"{name}.fp32_weight"))
        replace[id(scaled)] = helper.make_node("MatMul", [x, f"{name}.fp32_weight"], list(scaled.output))
    nodes = [replace.get(id(n), n) for n in graph.node]
    del graph.node[:]
    graph.node.extend(_live_nodes(nodes, [o.name for o in graph.output]))
    return model.SerializeToString()


def onnx_from_bytes(data: bytes) -> Any:
    import onnx

    return onnx.load_from_string(data)


def _live_nodes(nodes: list[Any], outputs: list[str]) -> list[Any]:
    """`nodes` (in order) minus those whose outputs nothing needs."""
    needed, live = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            live.append(node)
            needed.update(node.input)
    return live[::-1]
