"""INT8 calibration statistics computed inside the graph: exact min / max, a sample of the values.

The exact pass (calib_ranges, ``sample=0``) fetches every quantized activation whole: on HRNet-W32
at 512 px that is 260 M float32 values per image, copied out of ONNX Runtime and binned in NumPy,
in a session without graph optimisation (ONNX Runtime's NCHWc convolutions need it): 2.6 times a
plain inference here. This pass fetches, per quantized tensor ``x`` of shape (N, C, H, W):

- ``GlobalMaxPool(x)``: max of each (image, channel), (N, C, 1, 1); its max is max(x), exact;
- ``ReduceMin(x)`` (scalar), exact, except for ReLU outputs, whose minimum is 0 by construction
  (0 unless not one value was clipped by the ReLU; the ranges only use max |x| = max(x) there);
- ``MaxPool(x, kernel 1x1, stride s)``: ``x[:, :, ::s, ::s]``, the values on a grid (a 1x1 max is
  the value itself), with ``s`` chosen so that about ``sample`` values per tensor and image are
  kept, for the entropy and percentile histograms; none for "max".

All three are convolution-like ops ONNX Runtime runs in its NCHWc layout, so the session keeps full
graph optimisation and the activations are read once more in-graph, not copied out (1.2 times a
plain inference for W32-512, measured). The values are those of the optimised graph, which differ
from the unoptimised one by float rounding (about 1e-7 relative).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from higherhrnet_trt.core.lazy import lazy_import

from .taps import add_outputs, insert_after_producers, producer_ops, tapped_session, tensor_shapes

helper = lazy_import("onnx.helper")
onnx = lazy_import("onnx")

if TYPE_CHECKING:
    import numpy as np

# numpy is imported where used: the CLI reads DEFAULT_SAMPLE at start-up, before any work.
#: Default values per tensor and image kept for the histograms (``calibrate --sample``).
DEFAULT_SAMPLE = 65536
#: Ops whose output is >= 0 by construction: their minimum is taken as 0 without a reduction.
_NON_NEGATIVE = {"Relu"}


@dataclass
class TapValues:
    """One tensor's statistics on one feed: exact ``low`` / ``high`` (min / max over every value)
    and ``sample`` (float32, the values on the tap's grid; the whole tensor when stride is 1;
    None for "max")."""

    low: float
    high: float
    sample: np.ndarray | None


def sample_stride(shape: Sequence[int], sample: int) -> int:
    """Grid step s (rows and columns) keeping about ``sample`` values of an (N, C, H, W) tensor:
    ceil(sqrt(N*C*H*W / sample)), at least 1; 1 keeps every value."""
    size = math.prod(int(d) for d in shape)
    return max(1, math.ceil(math.sqrt(size / max(1, sample))))


def _tap_nodes(j: int, tensor: str, shape: Sequence[int] | None, non_negative: bool,
               stride: int | None) -> tuple[list, dict[str, str]]:
    """Nodes and {role: output} of tensor number ``j``'s tap (roles: high, low, sample).
    stride None: no sample; rank-4 tensors of known shape are tapped with pooling, others with
    whole-tensor reductions (and sampled whole)."""
    out = {"high": f"__calib_max_{j}"}
    pooled = shape is not None and len(shape) == 4
    if pooled:
        nodes = [helper.make_node("GlobalMaxPool", [tensor], [out["high"]], name=f"__calib_maxn_{j}")]
    else:
        nodes = [helper.make_node("ReduceMax", [tensor], [out["high"]], name=f"__calib_maxn_{j}",
                                  keepdims=0)]
    if not non_negative:
        out["low"] = f"__calib_min_{j}"
        nodes.append(helper.make_node("ReduceMin", [tensor], [out["low"]], name=f"__calib_minn_{j}",
                                      keepdims=0))
    if stride is not None:
        if pooled and stride > 1:
            out["sample"] = f"__calib_sample_{j}"
            nodes.append(helper.make_node("MaxPool", [tensor], [out["sample"]], name=f"__calib_smpn_{j}",
                                          kernel_shape=[1, 1], strides=[stride, stride]))
        else:
            out["sample"] = tensor  # small or not 4-D: every value
    return nodes, out


class CalibrationTaps:
    """An ONNX Runtime session of ``onnx_in`` that returns :class:`TapValues` per tensor.

    tensors: the quantized activations; sample: values kept per tensor and image for histograms
    (0: none, for "max"); first_feed: a feed whose shapes set the grid steps (dynamic models).
    """

    def __init__(self, onnx_in: str, tensors: Sequence[str], sample: int,
                 first_feed: Mapping[str, np.ndarray], tmpdir: str):
        model = onnx.load_model(onnx_in)
        shapes = tensor_shapes(model, {k: v.shape for k, v in first_feed.items()})
        ops = producer_ops(model)
        taps, self.outputs = {}, {}
        for j, t in enumerate(tensors):
            shape = shapes.get(t)
            stride = sample_stride(shape, sample) if sample and shape else (1 if sample else None)
            nodes, self.outputs[t] = _tap_nodes(j, t, shape, ops.get(t) in _NON_NEGATIVE, stride)
            taps[t] = nodes
        insert_after_producers(model, taps)
        self.fetch = sorted({name for out in self.outputs.values() for name in out.values()})
        add_outputs(model, self.fetch)
        # Full optimisation: the taps are ops ONNX Runtime runs in its NCHWc layout (see above).
        self.session = tapped_session(model, os.path.join(tmpdir, "calibration_taps.onnx"),
                                      optimise=True, priority_order=True)
        del model

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, TapValues]:
        """Statistics of every tensor on one feed."""
        import numpy as np

        got = dict(zip(self.fetch, self.session.run(self.fetch, dict(feed))))
        values = {}
        for t, out in self.outputs.items():
            high = float(np.max(got[out["high"]]))
            low = float(np.min(got[out["low"]])) if "low" in out else 0.0
            sample = got[out["sample"]] if "sample" in out else None
            values[t] = TapValues(low, high, sample)
        return values
