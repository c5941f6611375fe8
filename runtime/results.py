"""COCO keypoint results: the JSON list pycocotools' ``loadRes`` reads.

One record per person: ``{"image_id": int, "category_id": 1, "keypoints": [x1, y1, v1, ...],
"score": float}``, x / y in image pixels, v the joint's detection value (as the official HigherHRNet
writes it; COCO evaluation ignores v of detections). :class:`CocoResultsWriter` streams records to
disk as frames are processed, so a run that stops early (Ctrl-C, SIGTERM, a stream that never comes
back) still leaves a valid file once closed. Files appear under their name only complete (written
to a temporary name beside them, then renamed): never a torn list, and a previous file stays
whole until the new one replaces it.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import IO, Any

import numpy as np

from higherhrnet_trt.core.files import atomic_open, discard, name_output, temp_path


def poses_to_coco(poses, image_id: int, category_id: int = 1, **extra: Any) -> list[dict]:
    """People of one image -> COCO result records.

    poses: a Poses (keypoints (P, J, 3) [x, y, score] image pixels, scores (P,)).
    image_id: the COCO image id (or a frame number). extra: more keys copied into every record
        (e.g. file_name); loadRes keeps unknown keys. A tracked Poses (``track_ids`` set) gives
        each record its ``track_id`` (-1: the person is not tracked).
    People with a non-finite value are left out (JSON has no NaN; the pipeline never returns them).
    """
    kpts = np.asarray(poses.keypoints, dtype=np.float64)
    scores = np.asarray(poses.scores, dtype=np.float64)
    track_ids = getattr(poses, "track_ids", None)
    records = []
    for p in range(kpts.shape[0]):
        flat = kpts[p, :, :3].reshape(-1)
        if not (np.isfinite(flat).all() and math.isfinite(scores[p])):
            continue
        # 0.01 px and 1e-4 in scores: far below what OKS can see, and a third of the file size.
        values = [round(float(v), 2 if i % 3 < 2 else 4) for i, v in enumerate(flat)]
        record = {"image_id": int(image_id), "category_id": int(category_id),
                  "keypoints": values, "score": round(float(scores[p]), 6)}
        if track_ids is not None:
            record["track_id"] = int(track_ids[p])
        records.append({**record, **extra})
    return records


def image_id_from_name(name: str, fallback: int) -> int:
    """COCO file names are the id (``000000000139.jpg`` -> 139); any other name gets ``fallback``.

    Only all-digit stems count: taking the digits out of ``left_1.png`` and ``right_1.png`` would give
    two images one id.
    """
    stem = os.path.splitext(os.path.basename(name))[0]
    return int(stem) if re.fullmatch(r"\d{1,18}", stem) else int(fallback)


class CocoResultsWriter:
    """Writes result records to a JSON list incrementally (flushed per image).

    path: output file (folders are created). Use as a context manager or call close(): the closing
    ``]`` is written and the file renamed to ``path`` then. Until then ``temp_path`` (a hidden file
    beside it) holds every record written so far, and ``path`` is untouched: a process killed
    outright (SIGKILL, power loss) never leaves a torn list under the real name.
    """

    def __init__(self, path: str, category_id: int = 1) -> None:
        self.path = str(path)
        self.category_id = category_id
        self.count = 0  # records (people) written
        self.images = 0  # add() calls
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        self.temp_path = temp_path(self.path)
        self._file: IO[str] | None = open(self.temp_path, "w", encoding="utf-8")
        self._file.write("[")

    def add(self, poses, image_id: int, **extra: Any) -> int:
        """Append one image's people; returns how many records were written."""
        if self._file is None:
            raise ValueError(f"{self.path} is already closed")
        records = poses_to_coco(poses, image_id, self.category_id, **extra)
        try:
            for rec in records:
                self._file.write(("\n" if self.count == 0 else ",\n") + json.dumps(rec))
                self.count += 1
            self._file.flush()
        except OSError as e:  # disk full: close() removes the torn list
            name_output(e, self.path)
            raise
        self.images += 1
        return len(records)

    def close(self) -> None:
        """Finish the list and move it to ``path`` (the records so far, however the run ended)."""
        if self._file is None:
            return
        f, self._file = self._file, None
        try:
            try:
                f.write("\n]\n" if self.count else "]\n")
            finally:
                f.close()
            os.replace(self.temp_path, self.path)
        except OSError as e:
            # A full disk has torn the list already (a write failed half-way): nothing of it is
            # usable, so nothing partial is left behind.
            discard(self.temp_path)
            name_output(e, self.path)
            raise

    def __enter__(self) -> CocoResultsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_results(path: str, records: list[dict]) -> None:
    """Write a whole list of records at once (same layout as CocoResultsWriter)."""
    with atomic_open(path) as f:
        f.write("[" + ",".join("\n" + json.dumps(r) for r in records) + ("\n]\n" if records else "]\n"))


def load_results(path: str) -> list[dict]:
    """Read a results file back (a JSON list of records)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise ValueError(f"{path} is not a COCO results list")
    return data
