"""Calibration and check data: image files -> the model's input feeds.

Frames are pre-processed exactly as the runtime pre-processes them. Static-shape models: the
official pre-processing sizes the input after the image (short side = input size, long side
64-aligned), which a fixed H x W network cannot take. Such models get the same warp with the image
*letterboxed* into H x W, as the runtime pipeline feeds them (``core.preprocess.letterbox``): zoom
so the whole image fits, centred, black (zero) border, i.e. exactly the official transform whenever
the official size equals H x W. Dynamic models get the official pre-processing
(``core.preprocess.preprocess``) unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import shown_path
from higherhrnet_trt.core.formats import IMAGE_EXTENSIONS
from higherhrnet_trt.core.image_io import try_read_image
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.core.preprocess import letterbox, preprocess


def list_images(images: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Image files of a folder (recursively, sorted), or a list of files as given."""
    if isinstance(images, (str, os.PathLike)):
        path = os.fspath(images)
        if os.path.isdir(path):
            found = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files)
                          if f.lower().endswith(IMAGE_EXTENSIONS)]
            if not found:
                raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
            return found
        if os.path.isfile(path):
            return [path]
        raise UserError(f"calibration images not found: {path} (pass a folder of your own frames)")
    paths = [os.fspath(p) for p in images]
    if not paths:
        raise UserError("no calibration images given")
    return paths


def read_image(path: str) -> tuple[np.ndarray | None, str]:
    """(BGR uint8 image, "") or (None, reason): core.image_io.try_read_image (any file name,
    regular files only, the size bounded before decoding)."""
    return try_read_image(path)


def fixed_size_input(image_bgr: np.ndarray, size_hw: tuple[int, int], mean, std) -> np.ndarray:
    """Letterbox a frame into a static network input, (1, 3, H, W) float32, exactly as the runtime
    does for static-shape models (``core.preprocess.letterbox``): the official warp with the region
    chosen so the whole frame fits H x W, centred, black (0) border. Equal to the official
    pre-processing whenever the official size of the frame is H x W.
    """
    x, _ = letterbox(image_bgr, (int(size_hw[1]), int(size_hw[0])), mean, std, bgr=True)
    return x


class InputMaker:
    """Frames -> feeds for one ONNX file: the runtime's pre-processing, batched as the input needs.

    Static H, W: :func:`fixed_size_input` (letterbox). Dynamic: ``core.preprocess.preprocess``
    at ``input_size`` (default: the model's), scale 1. A static batch N groups N frames per feed.
    """

    def __init__(self, summary, meta: ModelMeta, input_size: int | None = None):
        if len(summary.inputs) != 1:
            raise UserError(f"expected one image input, got {[i.name for i in summary.inputs]}")
        inp = summary.inputs[0]
        if len(inp.dims) != 4:
            raise UserError(f"input {inp.name} is {inp.shape_text()}, expected N x 3 x H x W")
        self.name = inp.name
        n, _, h, w = inp.dims
        self.batch = n if isinstance(n, int) and n > 0 else 1
        self.fixed_hw = (h, w) if all(isinstance(d, int) and d > 0 for d in (h, w)) else None
        if self.fixed_hw and input_size:
            raise UserError(f"--input-size {input_size}: this model's input is fixed at {h}x{w} "
                            "(frames are letterboxed into it); --input-size is for models exported "
                            "with --dynamic: leave it out")
        self.input_size = int(input_size or meta.input_size)
        self.mean, self.std = tuple(meta.mean), tuple(meta.std)

    def describe(self) -> dict:
        return {"input": self.name, "batch": self.batch, "fixed_hw": self.fixed_hw,
                "input_size": None if self.fixed_hw else self.input_size,
                "mean": list(self.mean), "std": list(self.std),
                "preprocess": "letterbox-warp" if self.fixed_hw else "official"}

    def tensor(self, image_bgr: np.ndarray) -> np.ndarray:
        if self.fixed_hw:
            return fixed_size_input(image_bgr, self.fixed_hw, self.mean, self.std)

        inputs, _ = preprocess(image_bgr, self.input_size, (1.0,), self.mean, self.std)
        return inputs[0][1]

    def feeds(self, paths: Iterable[str], skipped: list[str], limit: int | None = None,
              bar=None, stats: dict | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Feeds from readable images of ``paths`` (unreadable ones appended to ``skipped`` as
        "path: reason"), at most ``limit`` images; ``stats["used"]`` counts the images used.
        Dynamic models: one image per feed (shapes follow each image)."""
        batch: list[np.ndarray] = []
        used = 0
        stats = stats if stats is not None else {}
        stats.setdefault("used", 0)
        for path in paths:
            if limit is not None and used >= limit:
                break
            image, why = read_image(path)
            if image is None:
                skipped.append(f"{shown_path(path)}: {why}")
                if bar is not None:
                    bar.set_postfix(skipped=len(skipped))
                continue
            batch.append(self.tensor(image))
            used += 1
            stats["used"] += 1
            if bar is not None:
                bar.update(1)
            if len(batch) == self.batch:
                yield {self.name: np.concatenate(batch, 0)}
                batch = []
        if batch:  # pad a last partial static batch by repeating its frames
            while len(batch) < self.batch:
                batch.append(batch[len(batch) % max(1, len(batch))])
            yield {self.name: np.concatenate(batch, 0)}

    def random_feeds(self, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
        """Standard-normal inputs (the scale of ImageNet-normalised pixels) of the model's size."""
        rng = np.random.default_rng(seed)
        h, w = self.fixed_hw or (self.input_size, self.input_size)
        return [{self.name: rng.standard_normal((self.batch, 3, h, w)).astype(np.float32)}
                for _ in range(count)]
