"""What the GPU pieces (TensorRT backend, CUDA kernels) share about cuda-python. No imports of
cuda-python here: callers import it lazily."""

from __future__ import annotations

from .errors import CudaError

#: The one line a GPU path prints on a machine without an NVIDIA driver or GPU.
NO_DRIVER = ("no NVIDIA driver or GPU found: run on the machine with the GPU, or run the ONNX file "
             "(not an engine) with --backend onnxruntime")


def check(result, what: str):
    """cuda-python calls return (err, *values): raise CudaError (a UserError and a RuntimeError)
    naming ``what`` on an error, else return the value (or the tuple of values; () when none)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise CudaError(f"CUDA error in {what}: {err} (check the GPU with nvidia-smi; rerun with "
                        "--verbose for the trace)")
    return values[0] if len(values) == 1 else tuple(values)
