"""Model metadata carried inside exported ONNX files (``metadata_props``) and engine sidecars.

Everything the runtime needs to pre-process, decode and draw is here, so an ONNX file or an engine
is self-describing: no separate config file travels with it. The metadata is the single source of
the model's keypoint set: ``ModelMeta.keypoints`` is built from the joint names, flip index,
skeleton, parser joint order and OKS sigmas the file carries (format 2), not looked up by dataset
name. Files of format 1 (without joint order and sigmas) take those two from the named dataset,
after checking that the names, flip index and skeleton they carry agree with it.

Format history: 1 = first release; 2 = adds ``joint_order`` and ``sigmas``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from .keypoints import KEYPOINT_SETS, KeypointSet, keypoint_set
from .lazy import lazy_import

numpy_helper = lazy_import("onnx.numpy_helper", "pip install onnx")

#: Prefix of every metadata_props key we write, so ours never collide with other tools' keys.
PREFIX = "higherhrnet_trt."
#: Bumped when the meaning of an output or a key changes; files newer than this are refused.
FORMAT_VERSION = 2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelMeta:
    """What a model file says about itself.

    input_size: the short side the network was trained at (512 or 640), pixels.
    outputs: "aggregated" (heatmaps (N, J, H/2, W/2) + tags (N, J, H/2, W/2, T): the stride-4 tags
        already upsampled once, the first of the official two steps) or "raw"
        (the two network outputs, (N, 2J, H/4, W/4) and (N, J, H/2, W/2)).
    flip: whether the graph runs the flip test (tags last axis T = 2 when True, else 1).
    heatmap_stride / tag_stride: output strides in input pixels (aggregated: 2 and 2; raw: the
        tags at 4, where the network makes them).
    mean / std: per RGB channel, applied to pixels scaled to [0, 1].
    target: for INT8 files, the runtime the Q/DQ graph is laid out for: "tensorrt" (also files
        without the key, written before it existed) or "cpu" (ONNX Runtime, OpenVINO); "" otherwise.
    weight_bits: for INT8 files of target "cpu", the width of their int8 weights: 7 (what
        ``calibrate --target cpu`` writes: x86 CPUs without VNNI saturate 8-bit weights); 0 when
        the file does not say (other files; CPU-target files without the key hold 8-bit weights).
    """

    model_name: str = "higherhrnet"
    config_name: str = ""
    dataset: str = "coco"
    joint_names: list[str] = field(default_factory=list)
    flip_index: list[int] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)
    joint_order: list[int] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    input_size: int = 512
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    color_order: str = "RGB"
    outputs: str = "aggregated"
    flip: bool = True
    heatmap_stride: int = 2
    tag_stride: int = 2
    tag_layout: str = "N,J,H,W,T (T = 2 with flip: image, mirrored image)"
    dynamic_shape: bool = False
    random_weights: bool = False
    precision: str = "fp32"
    target: str = ""
    weight_bits: int = 0
    exporter: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def keypoints(self) -> KeypointSet:
        """The model's keypoint set, read from this metadata (see the module docstring).

        Raises ValueError when the metadata is incomplete or contradicts itself.
        """
        known = KEYPOINT_SETS.get(self.dataset)
        if not self.joint_names:  # a hand-made ModelMeta naming only the dataset
            if known is None:
                raise ValueError(f"metadata names dataset {self.dataset!r} but no joints")
            return known
        carried = KeypointSet(
            name=self.dataset,
            joint_names=tuple(self.joint_names),
            flip_index=tuple(int(i) for i in self.flip_index),
            skeleton=tuple((int(a), int(b)) for a, b in self.skeleton),
            joint_order=tuple(int(i) for i in self.joint_order) or (known.joint_order if known else ()),
            sigmas=tuple(float(v) for v in self.sigmas) or (known.sigmas if known else ()),
        )
        if known is not None and not (self.joint_order and self.sigmas):
            for name in ("joint_names", "flip_index", "skeleton"):
                if getattr(carried, name) != getattr(known, name):
                    raise ValueError(f"metadata {name} differ from dataset {self.dataset!r}'s: re-export")
        _check_keypoint_set(carried)
        return carried

    @classmethod
    def for_dataset(cls, dataset: str, **kwargs) -> ModelMeta:
        kp = keypoint_set(dataset)
        return cls(
            dataset=dataset,
            joint_names=list(kp.joint_names),
            flip_index=list(kp.flip_index),
            skeleton=[list(e) for e in kp.skeleton],
            joint_order=list(kp.joint_order),
            sigmas=list(kp.sigmas),
            **kwargs,
        )

    def to_props(self) -> dict[str, str]:
        """Flat string map for ONNX ``metadata_props`` (values JSON-encoded)."""
        return {PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMeta:
        """Inverse of :meth:`to_props`. Raises ValueError when the map holds none of our keys."""
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise ValueError(
                "this ONNX file has no higherhrnet_trt metadata: export it with "
                "'higherhrnet-trt export', or state its config (run/eval --config NAME)"
            )
        known = {f.name for f in fields(cls)}
        values = {k: json.loads(v) for k, v in ours.items() if k in known}
        return cls(**_check_version(values))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ModelMeta:
        known = {f.name for f in fields(cls)}
        return cls(**_check_version({k: v for k, v in d.items() if k in known}))


def _check_version(values: dict) -> dict:
    """Refuse metadata written by a newer exporter (its keys may mean something else)."""
    version = int(values.get("format_version", 1))
    if version > FORMAT_VERSION:
        raise ValueError(f"model metadata format {version} is newer than this higherhrnet-trt reads "
                         f"({FORMAT_VERSION}): update higherhrnet-trt (pip install -U higherhrnet-trt)")
    return values


def _check_keypoint_set(kp: KeypointSet) -> None:
    """ValueError unless flip index, skeleton, joint order and sigmas fit the J joint names."""
    j = kp.num_joints
    if sorted(kp.flip_index) != list(range(j)) or any(kp.flip_index[i] != i and
                                                       kp.flip_index[kp.flip_index[i]] != i
                                                       for i in range(j)):
        raise ValueError(f"metadata flip_index {list(kp.flip_index)} is not a pairing of {j} joints")
    if sorted(kp.joint_order) != list(range(j)):
        raise ValueError(f"metadata joint_order {list(kp.joint_order)} is not an order of {j} joints")
    if len(kp.sigmas) != j or not all(v > 0 for v in kp.sigmas):
        raise ValueError(f"metadata sigmas need {j} positive values, got {list(kp.sigmas)}")
    if any(not (0 <= a < j and 0 <= b < j) for a, b in kp.skeleton):
        raise ValueError(f"metadata skeleton names joints outside 0..{j - 1}")


# -- Writing it into an ONNX model (onnx.ModelProto; the runtime only reads) ------------------------
#: metadata_props key of the weights' content hash (:func:`weights_digest`), stamped at export
#: (and by convert / calibrate for their own weights), checked by ``info``.
WEIGHTS_KEY = PREFIX + "weights_sha256"


def initializer_array(init):
    """An ONNX initializer (TensorProto) as a NumPy array."""
    return numpy_helper.to_array(init)


def weights_digest(model) -> str:
    """sha256 over the initializers, sorted by name: name, data type, dims and bytes of each.

    A content hash of the weights alone: metadata edits do not change it; a flipped byte in any
    weight does (a damaged copy or download)."""
    h = hashlib.sha256()
    for init in sorted(model.graph.initializer, key=lambda i: i.name):
        h.update(init.name.encode("utf-8") + b"\0")
        h.update(f"{init.data_type}:{list(init.dims)}\0".encode("ascii"))
        h.update(init.raw_data if init.raw_data else initializer_array(init).tobytes())
    return h.hexdigest()


def stamp_weights(model) -> None:
    """Record :func:`weights_digest` of ``model`` in its metadata_props (replacing any)."""
    digest = weights_digest(model)
    for p in model.metadata_props:
        if p.key == WEIGHTS_KEY:
            p.value = digest
            return
    entry = model.metadata_props.add()
    entry.key, entry.value = WEIGHTS_KEY, digest


def copy_metadata(src_model, dst_model, **overrides) -> None:
    """Copy metadata_props from src to dst (quantizers drop them); ``overrides`` replace ModelMeta
    fields, e.g. precision="fp16". The weights' hash is dst's own (its weights are new)."""
    props = {p.key: p.value for p in src_model.metadata_props}
    for k, v in overrides.items():
        props[PREFIX + k] = json.dumps(v)
    write_metadata(dst_model, props)


def write_metadata(model, props: dict[str, str]) -> None:
    """Replace ``model``'s metadata_props by ``props`` and stamp its weights' hash: the one place
    metadata is written (export and every converter)."""
    del model.metadata_props[:]
    for k, v in props.items():
        if k == WEIGHTS_KEY:
            continue
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    stamp_weights(model)
