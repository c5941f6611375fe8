"""What the GPU pieces (TensorRT backend, CUDA kernels) share about cuda-python. No imports of
cuda-python here: callers import it lazily."""

from __future__ import annotations

#: The one line a GPU path prints on a machine without an NVIDIA driver or GPU.
NO_DRIVER = "no NVIDIA driver found; use --backend onnxruntime (or run on the machine with the GPU)"


def check(result, what: str):
    """cuda-python calls return (err, *values): raise RuntimeError naming ``what`` on an error,
    else return the value (or the tuple of values; () when there is none)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error in {what}: {err}")
    return values[0] if len(values) == 1 else tuple(values)
