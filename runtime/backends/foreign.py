"""Model metadata for ONNX files that carry none of ours (exported by other tools).

An ONNX written by ``higherhrnet-trt export`` describes itself (core/metadata.py). One exported by
hand from the official code (``torch.onnx.export`` of HigherHRNet) does not: the user states its
config (``--config NAME``, ``Pipeline(path, config=NAME)``) and the rest is read off its outputs:
two 4-D outputs are the raw network outputs ((N, 2J, H/4, W/4), (N, J, H/2, W/2)); otherwise the
aggregated heatmaps and tags of our export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.metadata import PREFIX, ModelMeta
from higherhrnet_trt.export.configs import CONFIGS, get_config


def config_names() -> list[str]:
    """The configs a user may state (export/configs.py is plain data: no torch)."""
    return list(CONFIGS)


def model_meta(props: Mapping[str, str], config: str | None, path: str,
               output_ranks: Sequence[int] = ()) -> ModelMeta:
    """The file's own metadata, or one built from the stated ``config``.

    props: the file's metadata_props. output_ranks: ranks of the model's outputs, in order.
    UserError (one line, naming --config and the configs that exist) when neither is there, or
    when a stated config contradicts the file's own.
    """
    if any(k.startswith(PREFIX) for k in props):
        try:
            meta = ModelMeta.from_props(dict(props))
        except ValueError as e:
            raise UserError(f"{path}: {e}") from None
        if config and meta.config_name and config != meta.config_name:
            raise UserError(f"{path} says it is config {meta.config_name!r}, not {config!r}: leave "
                            "--config out (the file's metadata decides)")
        return meta
    if not config:
        raise UserError(f"{path} has no higherhrnet_trt metadata (not written by 'higherhrnet-trt "
                        "export'): re-export it, or state its config with --config NAME (one of "
                        f"{', '.join(config_names())})")

    cfg = get_config(config)  # UserError listing the configs for an unknown name
    raw = len(output_ranks) == 2 and all(r == 4 for r in output_ranks)
    return ModelMeta.for_dataset(
        cfg.dataset, model_name=f"higherhrnet_{cfg.name}", config_name=cfg.name,
        input_size=cfg.input_size, outputs="raw" if raw else "aggregated", flip=not raw,
        tag_stride=4 if raw else 2, exporter="unknown (no higherhrnet_trt metadata; --config stated)",
    )
