"""benchmarks/frame_memory: the --frames sizes reach the network input as core/limits.py sizes
them (the elongated inputs near its bounds that RESULTS section 12 measures), and a frame beyond
the bounds is reported, not measured. Memory figures themselves are measurements, not asserted."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")


def test_frames_and_refusals(tiny_onnx_dynamic, capsys):
    from higherhrnet_trt.benchmarks import frame_memory
    from higherhrnet_trt.core.limits import input_sizes
    from higherhrnet_trt.runtime.backends import create_backend

    with create_backend(str(tiny_onnx_dynamic)) as b:  # the input size the Pipeline sizes frames to
        size = b.metadata.input_size
    model = str(tiny_onnx_dynamic)
    assert frame_memory.main([model, "--frames", "512x64,64x512", "--scales", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for frame in ((512, 64), (64, 512)):  # 8:1 both ways, the most elongated the limits admit
        (w, h), = input_sizes(frame, size, [1.0])
        row = re.search(rf"{frame[0]}x{frame[1]}\s+(\d+) x (\d+)\s", out)
        assert row and (int(row[1]), int(row[2])) == (h, w), out
    assert re.search(r"worst: \d+\.\d+ KB per input pixel", out), out
    # scale 8 is outside core/limits.py's 0.25..4: refused in one line, no row; nothing measured,
    # so exit status 1
    assert frame_memory.main([model, "--frames", "512x64", "--scales", "8"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"512x64\s+scale 8: failed: .*0.25..4", out) and "worst" not in out, out
