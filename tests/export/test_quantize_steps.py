"""quantize_int8's steps on their own, on hand-made graphs and files with hand-worked answers.

The end-to-end checks (scales equal to ModelOpt's own, accuracy, cache) are in tests/export/test_quantize.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from higherhrnet_trt.export import calib_ranges, qdq, quantize  # noqa: E402


def _fp32_graph():
    """x -> Relu -> a; x -> Sigmoid -> b; Concat(a, b) -> c (all fp32)."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Sigmoid", ["x"], ["b"], name="sig"),
             helper.make_node("Concat", ["a", "b"], ["c"], axis=1, name="cat")]
    graph = helper.make_graph(nodes, "fp32", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph)


def _scale(name, dtype=np.float16):
    return numpy_helper.from_array(np.array(0.5, dtype), name)


def _placed_graph():
    """What ModelOpt writes for _fp32_graph with fp16 high precision: a weight Q/DQ, x quantized
    directly, a and b quantized after a Cast to fp16, both feeding the Concat through their DQs."""
    zp = numpy_helper.from_array(np.array(0, np.int8), "zp")
    w = numpy_helper.from_array(np.ones((1, 2), np.float32), "w")
    nodes = [
        helper.make_node("QuantizeLinear", ["w", "w_s", "zp"], ["w_q"]),  # a weight: skipped
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "zp"], ["w_dq"]),
        helper.make_node("QuantizeLinear", ["x", "x_qs", "zp"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_dqs", "zp"], ["x_dq"]),
        helper.make_node("Relu", ["x_dq"], ["a"]),
        helper.make_node("Sigmoid", ["x_dq"], ["b"]),
        helper.make_node("Cast", ["a"], ["a16"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["b"], ["b16"], to=TensorProto.FLOAT16),
        helper.make_node("QuantizeLinear", ["a16", "a_qs", "zp"], ["a_q"]),
        helper.make_node("DequantizeLinear", ["a_q", "a_dqs", "zp"], ["a_dq"]),
        helper.make_node("QuantizeLinear", ["b16", "b_qs", "zp"], ["b_q"]),
        helper.make_node("DequantizeLinear", ["b_q", "b_dqs", "zp"], ["b_dq"]),
        helper.make_node("Concat", ["a_dq", "b_dq"], ["c16"], axis=1),
        helper.make_node("Cast", ["c16"], ["c"], to=TensorProto.FLOAT),
    ]
    inits = [zp, w, _scale("w_s", np.float32), _scale("x_qs", np.float32), _scale("x_dqs", np.float32)]
    inits += [_scale(n) for n in ("a_qs", "a_dqs", "b_qs", "b_dqs")]
    graph = helper.make_graph(nodes, "placed",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4])], inits)
    return helper.make_model(graph)


def test_find_placement_traces_quantizers_to_fp32_tensors():
    p = qdq.find_placement(_placed_graph(), _fp32_graph())
    assert p.scales == {"x": {"x_qs", "x_dqs"}, "a": {"a_qs", "a_dqs"}, "b": {"b_qs", "b_dqs"}}
    assert p.groups == [{"a", "b"}]  # the Concat's inputs share one scale
    assert p.group_of()["x"] == frozenset({"x"}) and p.group_of()["a"] == frozenset({"a", "b"})


def test_find_placement_refuses_an_untraceable_quantizer():
    placed = _placed_graph()
    placed.graph.node.append(helper.make_node("Neg", ["a"], ["n"]))
    placed.graph.node.append(helper.make_node("QuantizeLinear", ["n", "x_qs", "zp"], ["n_q"]))
    with pytest.raises(RuntimeError, match="cannot trace 'n'"):
        qdq.find_placement(placed, _fp32_graph())


def test_apply_scales_writes_amax_over_127_in_each_initializers_dtype():
    placed = _placed_graph()
    placement = qdq.find_placement(placed, _fp32_graph())
    qdq.apply_scales(placed, placement, {"x": 12.7, "a": 0.0, "b": 254.0})
    got = {i.name: numpy_helper.to_array(i) for i in placed.graph.initializer}
    assert got["x_qs"].dtype == np.float32 and got["x_qs"] == np.float32(12.7) / np.float32(127)
    assert got["a_qs"].dtype == np.float16 and got["a_qs"] == 1.0  # a zero range gets scale 1
    assert got["b_dqs"] == np.float16(2.0)
    assert got["w_s"] == np.float32(0.5)  # weights untouched


def test_split_images_holds_out_at_most_a_fifth(tmp_path):
    for i in range(11):
        (tmp_path / f"{i:02d}.jpg").write_bytes(b"")
    pool, calib, hold = quantize._split_images(str(tmp_path), seed=0, holdout=5)
    assert len(pool) == 11 and len(hold) == 2 and len(calib) == 9  # 11 // 5 = 2 held out
    assert sorted(calib + hold) == pool
    again = quantize._split_images(str(tmp_path), seed=0, holdout=5)
    assert again == (pool, calib, hold)  # seeded
    assert quantize._split_images(str(tmp_path), seed=0, holdout=0)[2] == []


def test_range_cache_is_used_only_when_it_fits(tmp_path):
    placement = qdq.Placement({"a": {"s"}, "b": {"t"}}, [])
    path = str(tmp_path / "c" / "ranges.json")
    assert calib_ranges.read_cache(path, "k", placement) is None  # absent
    calib_ranges.write_cache(path, {"key": "k", "ranges": {"a": 1.0, "b": 2.0}})
    assert calib_ranges.read_cache(path, "k", placement)["ranges"] == {"a": 1.0, "b": 2.0}
    assert calib_ranges.read_cache(path, "other", placement) is None  # another key
    assert calib_ranges.read_cache(path, "k", qdq.Placement({"a": set(), "z": set()}, [])) is None
    with open(path, "w") as f:
        f.write('{"key": "k", "ran')  # torn by hand: ignored, the pass runs again
    assert calib_ranges.read_cache(path, "k", placement) is None
    settings, key, cache_path = calib_ranges.cache_entry(path, [path], {"method": "max"}, str(tmp_path))
    assert settings["format"] == calib_ranges.CACHE_FORMAT and "onnxruntime==" in settings["versions"]
    assert cache_path == str(tmp_path / f"int8_ranges_{key}.json") and len(key) == 32
    assert json.dumps(settings)  # JSON-able: written into the cache entry
