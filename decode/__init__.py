"""Bottom-up grouping decoder (official HeatmapParser semantics) in vectorised NumPy.

Steps, one module each: nms (peak NMS) -> topk (per-joint candidates) -> group (tag matching with
munkres, the classic Munkres steps) -> adjust (quarter-pixel offsets) -> refine (missing joints,
searched with tag_search). ``parse`` runs them on one image.
"""

from .adjust import adjust_joints, quarter_offsets
from .config import DecodeConfig
from .group import match_by_tag, match_cost
from .munkres import UnsolvableMatrix, classic_munkres
from .nms import heatmap_nms, window_max
from .parse import DEFAULT_CONFIG, parse, person_scores
from .refine import person_tags, refine_people
from .tag_search import dense_tag_argmax, tag_argmax, tag_scores
from .topk import top_k

__all__ = [
    "DEFAULT_CONFIG",
    "DecodeConfig",
    "UnsolvableMatrix",
    "adjust_joints",
    "classic_munkres",
    "dense_tag_argmax",
    "heatmap_nms",
    "match_by_tag",
    "match_cost",
    "parse",
    "person_scores",
    "person_tags",
    "quarter_offsets",
    "refine_people",
    "tag_argmax",
    "tag_scores",
    "top_k",
    "window_max",
]
