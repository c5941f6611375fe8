"""Load official HigherHRNet checkpoints (and MMPose 0.x / FP16-trained variants) into our model.

Accepted layouts, all normalised to the official key names:
- a plain ``state_dict`` (official ``model_best.pth.tar`` / ``pose_higher_hrnet_w32_512.pth``);
- a dict holding it under ``state_dict`` / ``best_state_dict`` / ``model``;
- ``module.`` prefixes (saved from DataParallel);
- a ``1.`` prefix and float16 tensors: the 640 configs train with ``FP16.ENABLED`` which wraps the
  network as ``Sequential(tofp16(), model, tofp32())`` before saving (loaded here as float32);
- MMPose 0.x: ``backbone.`` + ``keypoint_head.`` prefixes over the same module structure.

Checkpoints are pickles, and unpickling can run code: we always load with ``weights_only=True``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

from higherhrnet_trt.core.errors import CheckpointError
from higherhrnet_trt.core.lazy import lazy_import

from .configs import CONFIGS, ModelConfig

torch = lazy_import("torch")

_NESTED_KEYS = ("state_dict", "best_state_dict", "model", "model_state_dict", "net")
_PREFIXES = ("module.", "1.", "backbone.", "keypoint_head.", "model.")


def read_state_dict(path: str) -> dict:
    """Read a checkpoint file and return a flat, float32 state dict with official key names.

    Raises CheckpointError (one line, naming the fix) for missing, truncated, non-checkpoint or
    non-tensor files.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): download it again")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError / UnpicklingError / EOFError / zipfile errors
        raise CheckpointError(_explain_load_error(path, e)) from e
    return normalise_state_dict(obj, source=path)


def _explain_load_error(path: str, err: Exception) -> str:
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(path) as z:
                z.testzip()
        except (zipfile.BadZipFile, EOFError, OSError):
            return f"checkpoint {path} is truncated or corrupt (bad zip archive): download it again"
        full = str(err)
        if "weights only" in full.lower() or "weights_only" in full:
            import re

            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", full)
            what = found.group(1) if found else "non-tensor objects"
            return (f"checkpoint {path} contains Python objects besides tensors ({what}); we only "
                    "load weights, never pickled code: re-save it with "
                    "torch.save(model.state_dict(), 'weights.pth') where you trust it")
        return f"checkpoint {path} could not be read ({msg}): download it again"
    if head[:1] == b"\x80":  # legacy (non-zip) pickle protocol 2+
        if isinstance(err, (EOFError,)) or "truncated" in msg.lower() or "ran out of input" in msg.lower():
            return f"checkpoint {path} is truncated: download it again"
        return f"checkpoint {path} could not be unpickled as weights ({msg})"
    return (f"{path} is not a PyTorch checkpoint (it starts with {head!r}); "
            "pass the .pth / .pth.tar file of a HigherHRNet model")


def normalise_state_dict(obj, source: str = "checkpoint") -> dict:
    """Unwrap nesting, strip known prefixes, cast float16 to float32."""
    for _ in range(3):  # e.g. {"state_dict": {"model": {...}}}
        if isinstance(obj, Mapping) and not _has_tensors(obj):
            inner = next((obj[k] for k in _NESTED_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _has_tensors(obj):
        raise CheckpointError(f"{source} holds no tensors: it is not a model checkpoint")

    out = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        key = _strip_prefixes(key)
        if value.dtype == torch.float16:
            value = value.float()
        out[key] = value
    return out


def _has_tensors(d: Mapping) -> bool:
    return any(isinstance(v, torch.Tensor) for v in d.values())


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key = key[len(p):]
                changed = True
    return key


def describe_state_dict(sd: Mapping) -> dict:
    """What a checkpoint is, read from its shapes: width, joints, and the config that fits."""
    info: dict = {}
    w = sd.get("transition1.0.0.weight")
    if w is not None:
        info["width"] = int(w.shape[0])
    f1 = sd.get("final_layers.1.weight")
    if f1 is not None:
        info["num_joints"] = int(f1.shape[0])
    elif "final_layers.0.weight" in sd:
        info["num_joints"] = None
    if "final_layer.weight" in sd and "final_layers.0.weight" not in sd:
        info["kind"] = "top-down HRNet/SimpleBaseline (single final_layer)"
    info["matching_configs"] = [
        name for name, c in CONFIGS.items()
        if c.width == info.get("width") and c.num_joints == info.get("num_joints")
    ]
    return info


def check_compatible(sd: Mapping, model, cfg: ModelConfig) -> None:
    """Raise one CheckpointError that names the likely cause if ``sd`` does not fit ``model``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong_shape = [k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or wrong_shape):
        return

    info = describe_state_dict(sd)
    cause = ""
    if info.get("kind"):
        cause = f"this is a {info['kind']} checkpoint, not HigherHRNet"
    elif info.get("width") and info["width"] != cfg.width:
        cause = f"checkpoint has W{info['width']} widths, config {cfg.name} is W{cfg.width}"
    elif info.get("num_joints") and info["num_joints"] != cfg.num_joints:
        ds = "CrowdPose" if info["num_joints"] == 14 else "COCO" if info["num_joints"] == 17 else "custom"
        cause = (f"this is a {ds} checkpoint ({info['num_joints']} joints), "
                 f"config {cfg.name} has {cfg.num_joints}")
    else:
        cause = "checkpoint and config disagree"
    hint = ""
    # Never advise the config that was given (it is the one that failed).
    others = [c for c in info.get("matching_configs") or [] if c != cfg.name]
    if others:
        hint = f": use --config {' or '.join(others)}"
    detail = []
    if missing:
        detail.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        detail.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong_shape:
        k = wrong_shape[0]
        detail.append(f"{len(wrong_shape)} with other shapes (e.g. {k}: checkpoint "
                      f"{tuple(sd[k].shape)} vs model {tuple(expected[k].shape)})")
    err = CheckpointError(f"{cause}{hint} [keys: {'; '.join(detail)}]")
    err.cause, err.matching_configs = cause, others  # for callers that word their own advice (demo)
    raise err


def load_checkpoint(model, path: str) -> dict:
    """Load ``path`` into ``model`` (strict). Returns describe_state_dict() of the checkpoint."""
    sd = read_state_dict(path)
    check_compatible(sd, model, model.cfg)
    _check_finite(sd, path)
    model.load_state_dict(sd, strict=True)
    return describe_state_dict(sd)


def _check_finite(sd: dict, path: str) -> None:
    """CheckpointError when weights hold NaN or inf: the exported network would compute NaN, and
    every frame would be skipped at run time."""
    bad = [k for k, v in sd.items() if torch.is_tensor(v) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{path}: {len(bad)} weight tensors hold NaN or inf (e.g. {bad[0]}): the "
                              "checkpoint is damaged or was saved after training diverged; use an "
                              "earlier or a re-downloaded checkpoint")
