"""Model metadata for ONNX files that carry none of ours (exported by other tools).

An ONNX written by ``higherhrnet-trt export`` describes itself (core/metadata.py). One exported by
hand from the official code (``torch.onnx.export`` of HigherHRNet) does not: the user states its
config (``--config NAME``, ``Pipeline(path, config=NAME)``) and the rest is read off its outputs:
two 4-D outputs are the raw network outputs ((N, 2J, H/4, W/4), (N, J, H/2, W/2)); otherwise the
aggregated heatmaps and tags of our export.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.metadata import PREFIX, ModelMeta
from higherhrnet_trt.export.configs import CONFIGS, get_config

log = logging.getLogger("higherhrnet_trt")


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
    check_graph_fits(path, cfg)
    return ModelMeta.for_dataset(
        cfg.dataset, model_name=f"higherhrnet_{cfg.name}", config_name=cfg.name,
        input_size=cfg.input_size, outputs="raw" if raw else "aggregated", flip=not raw,
        tag_stride=4 if raw else 2, exporter="unknown (no higherhrnet_trt metadata; --config stated)",
    )


def final_layer_shape(cfg) -> tuple[int, int, int, int]:
    """Weight shape of the network's first final layer for ``cfg`` (an export.configs.ModelConfig).

    (out, in, k, k): out = J heatmaps (+ the tags when the first output carries them), in = the
    highest-resolution branch's channels (the HRNet width), k = final_conv_kernel. The first
    place where W16, W32 and W48 differ that every export of the official network keeps.
    """
    out = cfg.num_joints + (cfg.tag_dim if cfg.with_ae_loss[0] else 0)
    k = cfg.final_conv_kernel
    return (out, cfg.stage4.num_channels[0], k, k)


def conv_weight_shapes(path: str) -> set[tuple[int, ...]] | None:
    """Shapes of the Conv weights stored in the ONNX at ``path``; None without the onnx package."""
    try:
        import onnx  # optional: the runtime needs only onnxruntime
    except ImportError:
        return None
    try:
        model = onnx.load_model(path, load_external_data=False)
    except Exception:  # unreadable here: ONNX Runtime already opened it, its errors stand
        return None
    stored = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return {stored[node.input[1]] for node in model.graph.node
            if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in stored}


def check_graph_fits(path: str, cfg) -> None:
    """UserError (one line) when the graph at ``path`` is not a ``cfg`` network.

    A stated --config is trusted for what the graph cannot say (input size, normalisation), but
    a W16 graph run as W32 would decode with the wrong input size and never say so: the final
    layer's weight shape tells the widths apart. Skipped with a debug line without onnx.
    """
    shapes = conv_weight_shapes(path)
    if shapes is None:
        log.debug("onnx not installed: %s not checked against config %s", path, cfg.name)
        return
    expected = final_layer_shape(cfg)
    if expected in shapes:
        return
    fits = [name for name in CONFIGS if final_layer_shape(get_config(name)) in shapes]
    found = sorted({s[1] for s in shapes if len(s) == 4 and s[0] == expected[0] and s[2:] == expected[2:]})
    if len(found) == 1:
        what = f"its final layer takes {found[0]} channels, {cfg.name}'s takes {expected[1]}"
    else:
        what = f"none of its layers has the shape of {cfg.name}'s final layer, {tuple(expected)}"
    hint = f"it fits {', '.join(fits)}" if fits else "no known config fits it: re-export it"
    raise UserError(f"{path} is not a {cfg.name} network ({what}): state the config it was "
                    f"exported with ({hint})")
