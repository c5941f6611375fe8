"""Where the Triton pipeline model decodes: on the CPU (the Pipeline's decoder: the compiled CPU decode
where it builds, else NumPy) or with the CUDA kernels.

The setting travels in the pipeline model's config.pbtxt (``parameters`` key
``higherhrnet_trt.decode_device``), written by ``triton-repo`` / ``serve --decode-device``:

- ``auto`` (default): the CUDA decode kernels (kernels/decode_gpu.py, NVRTC-compiled decode.cu)
  when they work in the Triton Python backend's process (an NVIDIA driver and GPU, cuda-python,
  NVRTC, settings within the kernels' limits), else the CPU; the reason is recorded either way;
- ``cpu``: the CPU always;
- ``cuda``: the kernels, or the model fails to load with one line naming the fix.

The kernels compute what ``decode.parse`` computes (tests/kernels/test_gpu.py compares them bit
for bit), so the people served do not depend on the choice; only where the time goes does. The maps
reach the decode as host arrays (BLS returns NumPy, the multi-scale aggregation runs in NumPy) and
are uploaded per frame, as ``GpuDecoder.decode`` does with host inputs.

Each instance says what it chose in one line, through Triton's log (``serve`` repeats it on stderr):
``DecodeChoice.describe``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.errors import CudaError, UserError
from ..core.gpu import query_gpu
from ..decode import DecodeConfig
from ..kernels.decode_gpu import MAX_N, MAX_T, GpuDecoder

#: config.pbtxt parameters key of the setting (a string: one of DECODE_DEVICES).
PARAM_DECODE_DEVICE = "higherhrnet_trt.decode_device"
DECODE_DEVICES = ("auto", "cpu", "cuda")
DEFAULT_DECODE_DEVICE = "auto"
#: Map sizes (H, W, T) with a decoder kept: each holds device buffers for its maps (~70 MB at 512 x
#: 683 with 17 joints and 2 tag channels); frames of more sizes than this reuse the oldest's slot.
MAX_MAP_SIZES = 4
#: Side of the maps of the decoder built at start-up: compiles and loads the kernels there, not on
#: the first request.
PROBE_SIZE = 16

CUDA_FIX = ("run the server on a machine with an NVIDIA GPU and driver, with cuda-python and NVRTC in "
            "the Python backend's environment (pip install 'higherhrnet-trt[cuda]' "
            "nvidia-cuda-nvrtc-cu12), or use --decode-device auto (the CPU where the kernels cannot run)")


def tag_dim_of(tags_shape: Sequence[int]) -> int:
    """Tag channels T of the network's tags output: (N, J, h, w, T), or (N, J, h, w) for T = 1."""
    return int(tags_shape[4]) if len(tags_shape) == 5 else 1


def decode_config_of(settings) -> DecodeConfig:
    """The DecodeConfig of a ServerSettings (runtime.backends.triton_protocol) as the served
    pipeline decodes with it."""
    decode = dict(settings.decode)
    decode["joint_order"] = tuple(decode["joint_order"])
    return DecodeConfig(**decode)


def kernel_limits(max_people: int, num_joints: int, tag_dim: int) -> str | None:
    """Why the CUDA decode kernels cannot decode with these settings (one line), or None."""
    if max_people > MAX_N:
        return f"the CUDA decode kernels take --max-people up to {MAX_N}, not {max_people}"
    if tag_dim > MAX_T:
        return f"the CUDA decode kernels take up to {MAX_T} tag channels, this model has {tag_dim}"
    if num_joints > 32:
        return f"the CUDA decode kernels take up to 32 joints, this model has {num_joints}"
    return None


def check_decode_device(device: str, max_people: int, num_joints: int, tag_dim: int) -> str:
    """The setting, validated where it is written: a known name, and for ``cuda`` settings the
    kernels take (whether a GPU is there is for the serving machine to say). UserError otherwise."""
    name = str(device).strip().lower()
    if name not in DECODE_DEVICES:
        raise UserError(f"--decode-device {device!r}: choose one of {', '.join(DECODE_DEVICES)}")
    if name == "cuda":
        why = kernel_limits(max_people, num_joints, tag_dim)
        if why:
            raise UserError(f"--decode-device cuda: {why}: lower it, or use --decode-device auto or cpu "
                            "(CPU decode)")
    return name


class CudaMapDecoder:
    """``decode.parse`` by the CUDA kernels: one ``GpuDecoder`` (kernels/decode_gpu.py) per map size,
    host maps uploaded on each call, the people copied back. Raises CudaError / UserError when the
    kernels cannot run here (no driver or GPU, no cuda-python or NVRTC, a load failure)."""

    def __init__(self, cfg: DecodeConfig, num_joints: int, tag_dim: int, device: int = 0,
                 max_sizes: int = MAX_MAP_SIZES) -> None:
        self.gpu = query_gpu(device)
        if self.gpu is None:
            raise CudaError("no NVIDIA driver or CUDA GPU visible to this process")
        self.cfg, self.num_joints, self.device = cfg, int(num_joints), int(device)
        self.max_sizes = max(1, int(max_sizes))
        self._decoders: OrderedDict[tuple[int, int, int], GpuDecoder] = OrderedDict()
        GpuDecoder(self.num_joints, PROBE_SIZE, PROBE_SIZE, tag_dim, cfg, max_batch=1, device=device).close()

    def __call__(self, heatmaps: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """heatmaps (J, H, W), tags (J, H, W, T) float32 -> grouped (P, J, 3 + T), scores (P,)."""
        J, H, W = heatmaps.shape
        if tags.ndim == 3:
            tags = tags[..., None]
        key = (int(H), int(W), int(tags.shape[-1]))
        decoder = self._decoders.pop(key, None)
        if decoder is None:
            while len(self._decoders) >= self.max_sizes:  # least recently used size first
                self._decoders.popitem(last=False)[1].close()
            decoder = GpuDecoder(J, H, W, key[2], self.cfg, max_batch=1, device=self.device)
        self._decoders[key] = decoder  # most recently used last
        (grouped, scores), = decoder.decode(heatmaps[None], tags[None])
        return grouped, scores

    @property
    def sizes(self) -> list[tuple[int, int, int]]:
        """(H, W, T) of the map sizes with a decoder, least recently used first."""
        return list(self._decoders)

    def close(self) -> None:
        while self._decoders:
            self._decoders.popitem()[1].close()


@dataclass
class DecodeChoice:
    """What a pipeline model instance decodes with, and why.

    setting: what the config asked for (auto / cpu / cuda); device: what decodes ("cpu" = the CPU,
    "cuda" = the kernels); reason: one line (the GPU, or why the kernels cannot run);
    decoder: the CUDA decoder (None for the CPU).
    """

    setting: str
    device: str
    reason: str
    decoder: CudaMapDecoder | None = None

    def describe(self) -> str:
        """The one line an instance logs at start-up."""
        what = "CUDA kernels" if self.device == "cuda" else "CPU"
        return f"decode: {what} (--decode-device {self.setting}: {self.reason})"


def choose_decoder(setting: str, cfg: DecodeConfig, num_joints: int, tag_dim: int,
                   device: int = 0) -> DecodeChoice:
    """Pick the decoder for ``setting`` in this process (see the module docstring). ``cuda`` that
    cannot run raises UserError (one line, naming the fix); ``auto`` falls back to the CPU."""
    setting = check_decode_device(setting, cfg.max_people, num_joints, tag_dim)
    if setting == "cpu":
        return DecodeChoice(setting, "cpu", "CPU asked for")
    why = kernel_limits(cfg.max_people, num_joints, tag_dim)
    if why is None:
        try:
            decoder = CudaMapDecoder(cfg, num_joints, tag_dim, device)
        except Exception as e:  # anything that stops the kernels: said, then the CPU (auto)
            why = _first_line(e)
        else:
            gpu = decoder.gpu
            where = f"GPU {gpu.index}, {gpu.name}, compute {gpu.compute_capability}"
            return DecodeChoice(setting, "cuda", where, decoder)
    if setting == "cuda":
        raise UserError(f"--decode-device cuda: the CUDA decode cannot run here ({why}): {CUDA_FIX}")
    return DecodeChoice(setting, "cpu", f"the CUDA kernels cannot run here: {why}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
