"""engine.layers: the inspector's layer reports, parsed and counted (hand-written reports)."""

from __future__ import annotations

import json

from higherhrnet_trt.engine.layers import parse_json, parse_oneline, summarize

T = "Dimensions: [1,8,4,4], Format: (NHWC) Channel major format"
ONELINE = (
    "Layers:\n"
    f"Name: q0, LayerType: kgen, Inputs: [ {{ Name: image, Datatype: Float, {T} }}], Constants: "
    f"[ {{ Name: c, Datatype: Half, {T} }}], Outputs: [ {{ Name: a, Datatype: Int8, {T} }}], "
    "TacticName: t, StreamId: 0, Metadata: [ONNX Layer: q]\n"
    f"Name: conv_a, LayerType: correlation, Inputs: [ {{ Name: a, Datatype: Int8, {T} }}], Constants: "
    f"[ {{ Name: w, Datatype: Int8, {T} }}, {{ Name: b, Datatype: Float, {T} }}], Outputs: "
    f"[ {{ Name: b, Datatype: Float, {T} }}], TacticName: t, StreamId: 0, Metadata: [ONNX Layer: c]\n"
    f"Name: up, LayerType: deconv, Inputs: [ {{ Name: b, Datatype: Half, {T} }}, {{ Name: w2, "
    f"Datatype: Half, {T} }}], Constants: [ {{ Name: s, Datatype: Float, {T} }}], Outputs: "
    f"[ {{ Name: o, Datatype: Half, {T} }}], TacticName: t, StreamId: 0, Metadata: []\n"
    "\nI/O Tensors:\n Name: image, IOMode: Input, DataType: Float\n"
    "Name: not_a_layer, LayerType: kgen, Inputs: []\n"
)


def test_parse_oneline_report():
    layers = parse_oneline(ONELINE)
    assert [x["name"] for x in layers] == ["q0", "conv_a", "up"]  # stops at I/O Tensors
    assert layers[1] == {"name": "conv_a", "type": "correlation", "inputs": ["Int8"],
                         "constants": ["Int8", "Float"], "outputs": ["Float"]}
    assert layers[2]["inputs"] == ["Half", "Half"] and layers[2]["constants"] == ["Float"]


def test_summarize_counts_int8_convolutions():
    s = summarize(parse_oneline(ONELINE))
    counts = (s.layers, s.convs, s.conv_int8_inputs, s.conv_int8_weights, s.conv_int8_outputs)
    assert counts == (3, 2, 1, 1, 0)
    assert s.non_int8_convs == ["up"]
    assert s.precision == {"Int8": 1, "Float": 1, "Half": 1}
    assert "convolutions: 2; Int8 inputs 1, Int8 weights 1" in "\n".join(s.lines())


def test_parse_json_report():
    report = {"Layers": [
        {"Name": "conv", "LayerType": "CaskConvolution",
         "Inputs": [{"Name": "x", "Format/Datatype": "Channel major INT8 format", "Datatype": "Int8"}],
         "Weights": {"Type": "Int8", "Count": 72},
         "Outputs": [{"Name": "y", "Format/Datatype": "Row major linear FP16 format"}]},
        "only_a_name",
    ]}
    layers = parse_json(json.dumps(report))
    assert layers[0]["type"] == "CaskConvolution" and layers[0]["inputs"][0] == "Int8"
    assert layers[0]["constants"] == ["Int8"]  # the weights record's "Type"
    assert layers[0]["outputs"] == ["Half"] and layers[1]["type"] == "?"  # TensorRT 10's wording
