"""What an engine's layers compute in: the engine inspector's layer information, counted.

TensorRT's IEngineInspector needs a deserialized engine, and deserializing needs a CUDA GPU.
TensorRT-RTX builds ahead of time on a CPU, where there is none (measured, 1.7.1: cudaError 35).
But with ProfilingVerbosity.DETAILED the builder itself logs the inspector's ONELINE report of
the engine it just built, as one VERBOSE message beginning ``Layers:``. The build keeps that
message next to the engine (``ENGINE.layers.txt``, see :func:`layers_path`), so the layer
precisions of an ahead-of-time engine can be read where it was built, GPU or not.

A layer here is a dict with ``name``, ``type`` and the datatypes (TensorRT's spelling: ``Int8``,
``Half``, ``Float``...) of its ``inputs``, ``constants`` (weights; Myelin engines list them apart
from the inputs) and ``outputs``.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field

#: Layer types that are convolutions: TensorRT's ("Convolution", "CaskConvolution"...) and
#: Myelin's, as TensorRT-RTX reports them ("correlation"; "deconv" for ConvTranspose).
CONV_TYPES = ("correlation", "deconv")
#: Prefix of the builder's VERBOSE message that holds the engine's layer information.
BUILDER_MESSAGE_PREFIX = "Layers:"

_DTYPE = re.compile(r"Datatype: (\w+)")
_HEAD = re.compile(r"^Name: (.*?), LayerType: (\w+)")


def layers_path(engine_path: str) -> str:
    """Where the build keeps the builder's layer information: ``ENGINE.layers.txt``."""
    return str(engine_path) + ".layers.txt"


def is_conv(layer_type: str) -> bool:
    """A convolution or deconvolution layer, in any flavour's naming."""
    t = layer_type.lower()
    return "conv" in t or t in CONV_TYPES


def _section(line: str, key: str) -> str:
    """The text of ``key: [ ... ]`` in a ONELINE layer record ('' when absent)."""
    start = line.find(f", {key}: [")
    if start < 0:
        return ""
    depth, i = 0, line.index("[", start)
    for j in range(i, len(line)):
        depth += {"[": 1, "]": -1}.get(line[j], 0)
        if depth == 0:
            return line[i:j + 1]
    return line[i:]


def parse_oneline(text: str) -> list[dict]:
    """Layers of the inspector's ONELINE report (as the builder logs it): one ``Name: ...,
    LayerType: ...`` line per layer, up to the ``I/O Tensors:`` block."""
    layers = []
    for line in text.splitlines():
        if line.startswith("I/O Tensors:"):
            break
        head = _HEAD.match(line)
        if not head:
            continue
        layers.append({"name": head.group(1), "type": head.group(2),
                       **{k.lower(): _DTYPE.findall(_section(line, k))
                          for k in ("Inputs", "Constants", "Outputs")}})
    return layers


def parse_json(text: str) -> list[dict]:
    """Layers of the inspector's JSON report (``get_engine_information(JSON)``)."""
    data = json.loads(text)
    out = []
    for layer in data.get("Layers", []) if isinstance(data, dict) else []:
        if isinstance(layer, str):  # LAYER_NAMES_ONLY: names only, no precisions
            out.append({"name": layer, "type": "?", "inputs": [], "constants": [], "outputs": []})
            continue

        out.append({"name": str(layer.get("Name", "?")), "type": str(layer.get("LayerType", "?")),
                    "inputs": _json_types(layer, "Inputs"),
                    "constants": _json_types(layer, "Constants") + _json_types(layer, "Weights"),
                    "outputs": _json_types(layer, "Outputs")})
    return out


#: Words of TensorRT's "Format/Datatype" descriptions ("Channel major INT8 format ...") -> dtype.
_FORMAT_WORDS = {"INT8": "Int8", "FP16": "Half", "FP32": "Float", "BF16": "BFloat16", "FP8": "FP8"}


def _tensor_type(t) -> str | None:
    """The datatype of one JSON tensor record: "Datatype" (TensorRT-RTX and recent TensorRT),
    a weights record's "Type", or the dtype word inside "Format/Datatype" (TensorRT 8-10)."""
    if not isinstance(t, dict):
        return None
    for key in ("Datatype", "Type"):
        if isinstance(t.get(key), str):
            return t[key]
    text = str(t.get("Format/Datatype", ""))
    return next((v for k, v in _FORMAT_WORDS.items() if k in text.split()), None)


def _json_types(layer: dict, key: str) -> list[str]:
    """Datatypes of the tensors (or weights record) under ``key`` of one JSON layer record."""
    items = layer.get(key, [])
    types = [_tensor_type(t) for t in (items if isinstance(items, list) else [items])]
    return [t for t in types if t]


def read_builder_layers(engine_path: str) -> list[dict] | None:
    """The layers the builder logged for ``engine_path``, or None where it kept none."""
    path = layers_path(engine_path)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return parse_oneline(f.read())


def _dtype_word(types: list[str]) -> str:
    for word in ("Int8", "Half", "Float", "BFloat16", "FP8", "Int4"):
        if any(word.lower() in t.lower() for t in types):
            return word
    return types[0] if types else "none"


@dataclass
class LayerStats:
    """Counts over an engine's layers. ``conv_*``: convolutions whose (first) input, weights or
    output is Int8; ``precision``: layers by the datatype of their outputs."""

    layers: int = 0
    by_type: Counter = field(default_factory=Counter)
    precision: Counter = field(default_factory=Counter)
    convs: int = 0
    conv_int8_inputs: int = 0
    conv_int8_weights: int = 0
    conv_int8_outputs: int = 0
    conv_half_weights: int = 0
    non_int8_convs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """For ``higherhrnet-trt info --layers``."""
        return [f"layers: {self.layers}; by type: "
                + ", ".join(f"{k} {v}" for k, v in self.by_type.most_common()),
                "  output precision: " + ", ".join(f"{k} {v}" for k, v in self.precision.most_common()),
                f"  convolutions: {self.convs}; Int8 inputs {self.conv_int8_inputs}, Int8 weights "
                f"{self.conv_int8_weights}, Int8 outputs {self.conv_int8_outputs}, Half weights "
                f"{self.conv_half_weights}"]


def summarize(layers: list[dict]) -> LayerStats:
    """Count layers by type and output precision, and convolutions by Int8 inputs/weights/outputs."""
    s = LayerStats(layers=len(layers))
    for layer in layers:
        s.by_type[layer["type"]] += 1
        s.precision[_dtype_word(layer["outputs"])] += 1
        if not is_conv(layer["type"]):
            continue
        s.convs += 1
        int8_in = bool(layer["inputs"]) and layer["inputs"][0] == "Int8"
        int8_w = "Int8" in layer["constants"]
        s.conv_int8_inputs += int8_in
        s.conv_int8_weights += int8_w
        s.conv_int8_outputs += bool(layer["outputs"]) and layer["outputs"][0] == "Int8"
        s.conv_half_weights += "Half" in layer["constants"]
        if not (int8_in and int8_w):
            s.non_int8_convs.append(layer["name"])
    return s
