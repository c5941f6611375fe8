"""Model metadata carried inside exported ONNX files (``metadata_props``) and engine sidecars.

Everything the runtime needs to pre-process, decode and draw is here, so an ONNX file or an engine
is self-describing: no separate config file travels with it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from .keypoints import KeypointSet, keypoint_set

#: Prefix of every metadata_props key we write, so ours never collide with other tools' keys.
PREFIX = "higherhrnet_trt."
#: Bumped when the meaning of an output or a key changes.
FORMAT_VERSION = 1

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
    """

    model_name: str = "higherhrnet"
    config_name: str = ""
    dataset: str = "coco"
    joint_names: list[str] = field(default_factory=list)
    flip_index: list[int] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)
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
    exporter: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def keypoints(self) -> KeypointSet:
        return keypoint_set(self.dataset)

    @classmethod
    def for_dataset(cls, dataset: str, **kwargs) -> ModelMeta:
        kp = keypoint_set(dataset)
        return cls(
            dataset=dataset,
            joint_names=list(kp.joint_names),
            flip_index=list(kp.flip_index),
            skeleton=[list(e) for e in kp.skeleton],
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
                "'higherhrnet-trt export' (or pass the model settings explicitly)"
            )
        known = {f.name for f in fields(cls)}
        values = {k: json.loads(v) for k, v in ours.items() if k in known}
        return cls(**values)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ModelMeta:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
