"""The all-GPU pipeline: frame -> pre-processing kernel -> network -> resize + decode kernels -> people.

Everything between the frame upload and the people stays on the device, on the engine's CUDA stream:

1. the frame (host NumPy, copied through a pinned staging buffer, or a device array: CuPy, pycuda,
   torch via ``__cuda_array_interface__``) is warped, normalised and written as CHW straight into
   the engine's input buffer (kernels/preprocess.cu);
2. the network runs: a TensorRT engine (``execute_async_v3`` on the tensor addresses bound at
   activation), or a checkpoint through PyTorch (the torch backend, for GPUs without TensorRT)
   reading the buffer the kernel wrote, its outputs copied into fixed buffers the kernels read;
3. heatmaps and tags are resized to the input size, the official PROJECT2IMAGE step (resize.cu);
4. NMS + top-k, grouping (Munkres as the NumPy decoder), adjust and refine (decode.cu);
5. only the people counts, then the people found (P x J x (3 + T)) and scores cross to the host.

With ``cuda_graph`` the steps 1-4 and the count copy are captured once per frame size and replayed:
one launch a frame, nothing allocated on the per-frame path. (With a checkpoint, PyTorch's own CUDA
graph replays the network and the kernels launch around it: PyTorch's allocator must see its
captures, so they are not part of ours.) Results are the NumPy pipeline's
(``runtime.pipeline.Pipeline`` with the same decode settings): same decode, same geometry.

    from higherhrnet_trt.runtime.gpu_pipeline import GpuPipeline
    with GpuPipeline("w32_fp16.engine", cuda_graph=True) as pipe:
        poses = pipe.predict(frame)          # (H, W, 3) uint8 BGR, host or device

Needs an NVIDIA driver, cuda-python, and TensorRT or TensorRT-RTX (the engine's sidecar says which)
or, for a .pth checkpoint, PyTorch with CUDA.
Frames and engines follow the CPU Pipeline's contract (runtime/gpu_plan.py): grey and BGRA host
frames are converted, float frames refused; a fixed-size engine letterboxes frames whose official
size differs from its input; engines with fp16 I/O are refused (the kernels read float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import CudaError, UserError
from higherhrnet_trt.decode.config import DecodeConfig

from ..kernels.decode_gpu import GpuDecoder, _check, stream_handle
from ..kernels.preprocess_gpu import GpuPreprocessor, GpuResizer
from .backends.tensorrt_backend import TensorRTBackend
from .backends.torch_backend import TorchBackend
from .gpu_plan import check_io_dtypes, device_frame_shape, engine_input_wh, host_frame
from .options import DEFAULT_KPT_THR, DEFAULT_PERSON_THR
from .poses import Poses, cap_people, decode_config_for, is_bgr, people_from_grouped

#: Files the torch backend runs (everything else is taken for a TensorRT engine).
CHECKPOINT_SUFFIXES = (".pth", ".pth.tar", ".pt")


class GpuPipeline:
    """A TensorRT engine (or a PyTorch checkpoint) with GPU pre-processing and GPU decode,
    optionally as one CUDA graph.

    engine: path of a serialized engine with its sidecar (``higherhrnet-trt build``), or a .pth /
        .pth.tar checkpoint (run by the torch backend: GPUs without TensorRT).
    flavor: None (the one the engine's sidecar names), "tensorrt" or "tensorrt-rtx".
    config, half: for checkpoints, as the torch backend takes them (config "auto" recognises the
        weights; half defaults to FP16).
    decode: DecodeConfig or overrides (default: the official settings for the model's joints).
    cuda_graph: capture pre-processing + inference + decode once per frame size and replay it.
    heatmap_resolution: decode at the maps' own resolution (no resize; not the official results).
    color_order: "bgr" (cv2) or "rgb" frames. kpt_thr: joints above it span a person's box.
    person_thr: people scored below it are not returned (as Pipeline; 0 returns every candidate).
    """

    def __init__(self, engine: str, flavor: str | None = None, decode: DecodeConfig | dict | None = None,
                 cuda_graph: bool = False, heatmap_resolution: bool = False, color_order: str = "bgr",
                 kpt_thr: float = DEFAULT_KPT_THR, device: int = 0, config: str = "auto",
                 half: bool | None = None, person_thr: float = DEFAULT_PERSON_THR) -> None:
        self.bgr = is_bgr(color_order)
        if str(engine).lower().endswith(CHECKPOINT_SUFFIXES):
            self.backend = TorchBackend(str(engine), config=config, device=f"cuda:{device}", half=half,
                                        cuda_graph=cuda_graph)
        else:
            self.backend = TensorRTBackend(engine, flavor=flavor, device=device)
        self._decode_arg = decode
        self.cuda_graph = cuda_graph
        self.heatmap_resolution = heatmap_resolution
        self.kpt_thr = float(kpt_thr)
        self.person_thr = float(person_thr)
        self.device = device
        self.frames = 0
        self._pre = None
        self._network: _TensorRTNetwork | _TorchNetwork | None = None
        self._per_size: dict[tuple[int, int], _SizeState] = {}

    # -- lifecycle ---------------------------------------------------------------------------------
    def activate(self) -> GpuPipeline:
        if self.backend.is_active:
            return self

        self.backend.activate()
        meta = self.backend.metadata
        if meta.outputs != "aggregated":
            raise UserError(f"{self.backend.path}: the GPU pipeline needs an engine with aggregated outputs "
                            "(the default export); re-export without --outputs raw")
        self.cfg = decode_config_for(meta, self._decode_arg, self.backend.path)
        torch_net = self.backend.name == "torch"
        fixed_wh = engine_input_wh(self.backend.inputs[0].shape)
        if not torch_net:  # the torch network casts; an engine's buffers are read as they are
            check_io_dtypes(self.backend.inputs, self.backend.outputs, self.backend.path)
        self._pre = GpuPreprocessor(meta.input_size, meta.mean, meta.std, bgr=self.bgr, device=self.device,
                                    input_wh=None if torch_net else fixed_wh)
        self._network = _TorchNetwork(self.backend) if torch_net else _TensorRTNetwork(self.backend)
        return self

    def deactivate(self) -> None:
        for state in self._per_size.values():
            state.close()
        self._per_size.clear()
        if self._pre is not None:
            self._pre.close()
            self._pre = None
        self._network = None
        self.backend.deactivate()

    def __enter__(self) -> GpuPipeline:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    # -- inference ---------------------------------------------------------------------------------
    def predict(self, frame: Any) -> Poses:
        """People in one frame, best first, in frame pixels (as Pipeline.predict).

        frame: (H, W, 3) uint8, a NumPy array (grey and BGRA converted, other dtypes refused, as
            Pipeline.predict does) or an (H, W, 3) uint8 device array (``__cuda_array_interface__``).
        """
        self.activate()
        on_device = hasattr(frame, "__cuda_array_interface__")
        if on_device:
            shape = device_frame_shape(frame.__cuda_array_interface__)
        else:
            frame = host_frame(frame)  # never truncate floats to uint8 (they were read as zeros)
            shape = frame.shape
        key = (int(shape[1]), int(shape[0]))
        state = self._per_size.get(key)
        if state is None:
            state = self._per_size[key] = _SizeState(self, key)
        grouped, scores = state.run(frame, on_device)
        self.frames += 1
        poses = people_from_grouped(grouped, scores, state.geometry, self.backend.metadata.num_joints,
                                    self.kpt_thr, state.decode_wh)
        return cap_people(poses, self.cfg.max_people).select(self.person_thr)


class _SizeState:
    """Buffers, kernels and (optionally) the CUDA graph for frames of one size (W, H)."""

    def __init__(self, pipe: GpuPipeline, image_wh: tuple[int, int]) -> None:
        self.pipe = pipe
        pre = pipe._pre
        self._check = _check
        self.drv = pre.drv
        (w, h), _, self.geometry = pre.plan(image_wh)
        self.network = network = pipe._network
        self.input_shape = (1, 3, h, w)
        bound = network.bind(self.input_shape, image_wh)
        self.input_ptr, self.heat_ptr, self.tag_ptr, hm_shape, tag_shape = bound
        self.stream = network.stream
        J, mh, mw = hm_shape[1], hm_shape[2], hm_shape[3]  # (1, J, h/2, w/2)
        T = tag_shape[4] if len(tag_shape) == 5 else 1  # (1, J, h/2, w/2, T)
        self.resizers = []
        if pipe.heatmap_resolution:
            dh, dw = mh, mw
            self.decode_wh = (mw, mh)
            self.maps = (self.heat_ptr, self.tag_ptr)
        else:
            dh, dw = h, w
            self.decode_wh = None  # maps at the base size: the official PROJECT2IMAGE flow
            self.resize = GpuResizer((mh, mw), (h, w), device=pipe.device)
            self.maps = (self.resize.alloc(J * h * w * 4), self.resize.alloc(J * h * w * T * 4))
            self.num_joints, self.tag_dim = J, T
        self.decoder = GpuDecoder(J, dh, dw, T, pipe.cfg, max_batch=1, device=pipe.device)
        # A pinned staging buffer for host frames: its H2D copy can be captured in the graph.
        self.frame_nbytes = image_wh[0] * image_wh[1] * 3
        self.frame_dev = pre.alloc(self.frame_nbytes)
        self.frame_host_ptr = int(_check(self.drv.cuMemHostAlloc(self.frame_nbytes, 0), "cuMemHostAlloc"))
        import ctypes

        buf = (ctypes.c_uint8 * self.frame_nbytes).from_address(self.frame_host_ptr)
        self.frame_host = np.frombuffer(buf, np.uint8).reshape(image_wh[1], image_wh[0], 3)
        self.graph = self.graph_exec = None

    def _enqueue(self, frame_ptr: int, pitch: int) -> None:
        """Steps 1-4 and the count copy, on the engine's stream (captured as is in graph mode)."""
        pipe, s = self.pipe, self.stream
        W, H = self.geometry.image_wh
        pipe._pre(frame_ptr, out=self.input_ptr, stream=s, frame_shape=(H, W), frame_pitch=pitch)
        self.network.enqueue(s, self.input_shape)
        if not pipe.heatmap_resolution:
            J, T = self.num_joints, self.tag_dim
            self.resize(self.heat_ptr, self.maps[0], planes=J, inner=1, stream=s)
            self.resize(self.tag_ptr, self.maps[1], planes=J, inner=T, stream=s)
        self.decoder.enqueue(self.maps[0], self.maps[1], 1, s)

    def run(self, frame: Any, on_device: bool) -> tuple[np.ndarray, np.ndarray]:
        drv, s = self.drv, self.stream
        W, H = self.geometry.image_wh
        self._check(drv.cuCtxPushCurrent(self.decoder.ctx), "cuCtxPushCurrent")
        try:
            if on_device:
                cai = frame.__cuda_array_interface__
                if str(cai.get("typestr", ""))[1:] != "u1":
                    raise UserError(f"device frames must be uint8, got {cai.get('typestr')!r}")
                strides = cai.get("strides")
                frame_ptr, pitch = int(cai["data"][0]), int(strides[0]) if strides else W * 3
                if self.pipe.cuda_graph and self.network.capturable:
                    # A graph reads the address it was captured with: bring the frame to our buffer
                    # (one device-to-device copy, queued before the graph on the same stream).
                    self._check(drv.cuMemcpy2DAsync(self._copy2d(frame_ptr, pitch), s), "D2D frame")
                    frame_ptr, pitch = self.frame_dev, W * 3
            else:
                np.copyto(self.frame_host, frame)  # host_frame(): (H, W, 3) uint8 already
                self._check(drv.cuMemcpyHtoDAsync(self.frame_dev, self.frame_host_ptr, self.frame_nbytes, s),
                            "H2D frame")
                frame_ptr, pitch = self.frame_dev, W * 3
            if not (self.pipe.cuda_graph and self.network.capturable):
                self._enqueue(frame_ptr, pitch)
            else:
                if self.graph_exec is None:
                    self._capture(frame_ptr, pitch)
                self._check(drv.cuGraphLaunch(self.graph_exec, s), "cuGraphLaunch")
            return self.decoder.collect(self.maps[0], self.maps[1], 1, s)[0]
        finally:
            drv.cuCtxPopCurrent()

    def _copy2d(self, src_ptr: int, src_pitch: int):
        """cuMemcpy2D parameters: a (possibly row-padded) device frame -> our packed frame buffer."""
        drv = self.drv
        W, H = self.geometry.image_wh
        p = drv.CUDA_MEMCPY2D()
        p.srcMemoryType = drv.CUmemorytype.CU_MEMORYTYPE_DEVICE
        p.srcDevice = src_ptr
        p.srcPitch = src_pitch
        p.dstMemoryType = drv.CUmemorytype.CU_MEMORYTYPE_DEVICE
        p.dstDevice = self.frame_dev
        p.dstPitch = W * 3
        p.WidthInBytes = W * 3
        p.Height = H
        return p

    def _capture(self, frame_ptr: int, pitch: int) -> None:
        """One eager run first (TensorRT and cuDNN-style lazy setup must not happen inside a
        capture), then the capture of steps 1-4 reading ``frame_ptr``."""
        drv, s = self.drv, self.stream
        self._enqueue(frame_ptr, pitch)
        self._check(drv.cuStreamSynchronize(s), "sync")
        mode = drv.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
        self._check(drv.cuStreamBeginCapture(s, mode), "cuStreamBeginCapture")
        try:
            self._enqueue(frame_ptr, pitch)
        finally:
            graph = self._check(drv.cuStreamEndCapture(s), "cuStreamEndCapture")
        self.graph = graph
        self.graph_exec = self._check(drv.cuGraphInstantiate(graph, 0), "cuGraphInstantiate")

    def close(self) -> None:
        drv = self.drv
        if self.graph_exec is not None:
            drv.cuGraphExecDestroy(self.graph_exec)
            drv.cuGraphDestroy(self.graph)
            self.graph = self.graph_exec = None
        self.decoder.close()
        if not self.pipe.heatmap_resolution:
            self.resize.close()
        if self.frame_host_ptr:
            drv.cuMemFreeHost(self.frame_host_ptr)
            self.frame_host_ptr = 0


class _TensorRTNetwork:
    """The engine's step: its own stream and the device buffers bound at activation."""

    capturable = True  # plain kernel launches on our stream: part of our CUDA graph

    def __init__(self, backend) -> None:
        self.backend = backend
        self.stream = stream_handle(backend.cuda_stream)
        self._shape: tuple[int, ...] | None = None

    def bind(self, shape: tuple[int, int, int, int], image_wh: tuple[int, int]):
        """Set the input shape; -> (input, heatmaps, tags) device pointers and the output shapes."""
        backend = self.backend
        name, context = backend.input_name, backend._context
        if tuple(context.get_tensor_shape(name)) != shape and not context.set_input_shape(name, shape):
            h, w = shape[2], shape[3]
            raise UserError(f"frames of {image_wh[0]}x{image_wh[1]} need a 1x3x{h}x{w} input, outside what "
                            f"{backend.path} accepts; build the engine with --min-shape/--max-shape covering "
                            f"it, or export at --input-size {max(h, w)}")
        self._shape = shape
        heat_name, tag_name = (o.name for o in backend.outputs)
        ptrs = backend._device_ptrs
        return (ptrs[name], ptrs[heat_name], ptrs[tag_name], tuple(context.get_tensor_shape(heat_name)),
                tuple(context.get_tensor_shape(tag_name)))

    def enqueue(self, stream: int, shape: tuple[int, int, int, int]) -> None:
        """Run the engine on ``stream`` for an input of ``shape`` (frames of several sizes share the
        context and its buffers, so the shape is set again when it changes)."""
        context = self.backend._context
        if shape != self._shape:
            context.set_input_shape(self.backend.input_name, shape)
            self._shape = shape
        if not context.execute_async_v3(stream):
            raise CudaError("TensorRT execute_async_v3 failed (see the TensorRT log above)")


class _TorchNetwork:
    """A checkpoint's step through the torch backend, on a PyTorch stream whose handle the kernels
    share: the network reads a fixed input tensor the pre-processing kernel writes (float32, cast to
    the model's dtype in place), and its outputs are copied into fixed tensors the resize and decode
    kernels read. Not capturable into our graph: the torch backend's own CUDA graph (cuda_graph)
    replays the network instead."""

    capturable = False

    def __init__(self, backend) -> None:
        self.backend = backend
        self.torch = torch = backend._torch
        self._torch_stream = torch.cuda.Stream(device=backend._device)
        self.stream = int(self._torch_stream.cuda_stream)
        self._bound: dict[tuple[int, ...], tuple] = {}  # input shape -> fixed tensors

    def bind(self, shape: tuple[int, int, int, int], image_wh: tuple[int, int]):
        torch, backend = self.torch, self.backend
        if shape not in self._bound:
            dev = backend._device
            x = torch.zeros(shape, dtype=torch.float32, device=dev)
            x_model = torch.zeros(shape, dtype=backend._dtype, device=dev)
            with torch.cuda.stream(self._torch_stream):
                heat, tags = backend._run(x_model)  # warm-up (and the backend's graph capture)
            self._torch_stream.synchronize()
            if tags.ndim == 4:
                tags = tags[..., None]
            # Packed float32 buffers (the kernels read dense (1, J, h, w) and (1, J, h, w, T)).
            self._bound[shape] = (x, x_model, torch.empty(tuple(heat.shape), dtype=torch.float32, device=dev),
                                  torch.empty(tuple(tags.shape), dtype=torch.float32, device=dev))
        x, _, heat, tags = self._bound[shape]
        return x.data_ptr(), heat.data_ptr(), tags.data_ptr(), tuple(heat.shape), tuple(tags.shape)

    def enqueue(self, stream: int, shape: tuple[int, int, int, int]) -> None:
        torch = self.torch
        x, x_model, heat, tags = self._bound[shape]
        with torch.cuda.stream(self._torch_stream):
            x_model.copy_(x)
            out_heat, out_tags = self.backend._run(x_model)
            heat.copy_(out_heat)
            tags.copy_(out_tags.reshape(tags.shape))
