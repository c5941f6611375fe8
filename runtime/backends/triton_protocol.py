"""The wire contract between a Triton server running the whole pipeline and its clients.

The served pipeline model takes whole frames and returns people, so a camera box sends ~1 MB of
uint8 pixels per 640x480 frame and gets a few kB back (the network's float maps never cross the
network). Per frame (Triton adds the batch dimension in front of each):

- input ``frames``: UINT8 (H, W, 3) BGR pixels; frames of one request share a size.
- output ``keypoints``: FP32 (max_people, J, 3) [x, y, score] in frame pixels, best person first,
  rows past ``count`` zero.
- output ``scores``: FP32 (max_people,) person scores, rows past ``count`` zero.
- output ``count``: INT32 (1,) people found (<= max_people).
- output ``valid``: BOOL (1,) False when the frame was skipped (the network returned NaN / inf).

The pipeline model's config carries, as string ``parameters``, the model metadata
(:class:`ModelMeta` JSON, everything a client draws with) and the settings the server decodes with
(scales, project2image, the resolved DecodeConfig), so a client can refuse settings it would not
get. Boxes are not sent: the client computes them from the keypoints with its own ``kpt_thr``
exactly as a local Pipeline does.

Only numpy and the standard library here: both the client backend and the server-side model
import this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

FRAMES = "frames"
KEYPOINTS = "keypoints"
SCORES = "scores"
COUNT = "count"
VALID = "valid"
OUTPUTS = (KEYPOINTS, SCORES, COUNT, VALID)

#: parameters keys of the pipeline model's config.pbtxt (string values, JSON-encoded).
PARAM_META = "higherhrnet_trt.meta"
PARAM_SETTINGS = "higherhrnet_trt.settings"
PARAM_NETWORK = "higherhrnet_trt.network_model"

#: default ports of Triton's front ends (tritonserver and PyTriton alike).
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_PORT = 8001
DEFAULT_METRICS_PORT = 8002


@dataclass(frozen=True)
class ServerSettings:
    """What the served pipeline decodes with; the client's Pipeline must ask for the same.

    scales: test scales, largest first; project2image: official PROJECT2IMAGE flow;
    decode: the resolved DecodeConfig as a dict (joint_order a list); max_people = decode's.
    """

    scales: tuple[float, ...]
    project2image: bool
    decode: dict

    @property
    def max_people(self) -> int:
        return int(self.decode["max_people"])

    def to_json(self) -> str:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServerSettings:
        d = json.loads(text)
        return cls(scales=tuple(float(s) for s in d["scales"]), project2image=bool(d["project2image"]),
                   decode=dict(d["decode"]))

    def differences(self, other: ServerSettings) -> list[str]:
        """Human-readable 'name: ours vs theirs' for every setting that differs."""
        out = []
        if tuple(self.scales) != tuple(other.scales):
            out.append(f"scales {list(self.scales)} vs {list(other.scales)}")
        if self.project2image != other.project2image:
            out.append(f"project2image {self.project2image} vs {other.project2image}")
        for key in sorted(set(self.decode) | set(other.decode)):
            a, b = self.decode.get(key), other.decode.get(key)
            if a != b:
                out.append(f"decode {key} {a} vs {b}")
        return out


def poses_to_tensors(poses: Sequence, max_people: int, num_joints: int) -> dict[str, np.ndarray]:
    """Server side: a batch of Poses -> the fixed-shape output tensors (leading batch dimension).

    poses: Pipeline.predict_batch's list (keypoints (P, J, 3), scores (P,), valid).
    Returns {keypoints (N, max_people, J, 3) f32, scores (N, max_people) f32, count (N, 1) i32,
    valid (N, 1) bool}.
    """
    n = len(poses)
    keypoints = np.zeros((n, max_people, num_joints, 3), np.float32)
    scores = np.zeros((n, max_people), np.float32)
    count = np.zeros((n, 1), np.int32)
    valid = np.ones((n, 1), bool)
    for i, p in enumerate(poses):
        k = min(len(p), max_people)  # the Pipeline already caps at max_people
        keypoints[i, :k] = p.keypoints[:k]
        scores[i, :k] = p.scores[:k]
        count[i, 0] = k
        valid[i, 0] = bool(p.valid)
    return {KEYPOINTS: keypoints, SCORES: scores, COUNT: count, VALID: valid}


def tensors_to_people(outputs: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Client side: output tensors of one request -> per frame (keypoints (P, J, 3) f32, scores
    (P,) f32, valid). Checks the shapes agree, so a foreign model fails in one line."""
    keypoints = np.asarray(outputs[KEYPOINTS], np.float32)
    scores = np.asarray(outputs[SCORES], np.float32)
    count = np.asarray(outputs[COUNT]).reshape(-1)
    valid = np.asarray(outputs[VALID]).reshape(-1)
    n = keypoints.shape[0]
    if keypoints.ndim != 4 or keypoints.shape[3] != 3 or scores.shape != keypoints.shape[:2] or \
            count.shape != (n,) or valid.shape != (n,):
        raise ValueError(f"unexpected people tensors: keypoints {keypoints.shape}, scores {scores.shape}, "
                         f"count {count.shape}, valid {valid.shape}")
    out = []
    for i in range(n):
        k = int(np.clip(count[i], 0, keypoints.shape[1]))
        out.append((keypoints[i, :k].copy(), scores[i, :k].copy(), bool(valid[i])))
    return out
