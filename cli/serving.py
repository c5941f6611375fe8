"""``higherhrnet-trt triton-repo | serve``: a model behind NVIDIA Triton Inference Server.

Nothing heavy at module level (``--help`` stays instant); PyTriton, tritonclient and the model load
when the subcommand runs.
"""

from __future__ import annotations

import argparse

from higherhrnet_trt.runtime.options import DecodeOptions

from .args import HelpFormatter, paragraphs
from .args import positive_int as _positive_int
from .bounds import PORT, QUEUE_DELAY_US, THREADS, nonempty
from .bounds import host as bounds_host
from .flags import add_flags


def _served_model_options(p: argparse.ArgumentParser, pipeline_instances: int) -> None:
    """The served model: name, batching, instances, and what it decodes with (clients must ask for
    the same; run's defaults)."""
    p.add_argument("--name", type=nonempty("a model name"), default=None,
                   help="the pipeline model's name in the URL (default: the model file's stem); the "
                        "network is NAME_network")
    p.add_argument("--max-batch", type=_positive_int, default=8,
                   help="Triton's max_batch_size: most frames (and network inputs) one execution takes")
    p.add_argument("--queue-delay-us", type=QUEUE_DELAY_US, default=2000, metavar="US",
                   help="dynamic batching: longest wait for more requests to batch, microseconds")
    p.add_argument("--pipeline-instances", type=_positive_int, default=pipeline_instances, metavar="N",
                   help="Python-backend processes running pre-processing and decode in parallel")
    add_flags(p, DecodeOptions, ["scales", "det_thr", "max_people", "heatmap_resolution"],
              scales=dict(help="test scales, e.g. 2,1,0.5 (clients must ask for the same)"),
              max_people=dict(help="most people per frame: the fixed size of the people tensors"))
    p.add_argument("--decode-device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the pipeline model decodes: auto = the CUDA decode kernels when an NVIDIA "
                        "GPU, cuda-python and NVRTC work in Triton's Python backend, else NumPy; cpu = "
                        "NumPy; cuda = the kernels or fail in one line. Same people either way; each "
                        "instance logs its choice and why in Triton's log")


def register(sub) -> None:
    p = sub.add_parser(
        "triton-repo",
        help="write a Triton model repository: the network + a Python-backend pipeline model",
        description=paragraphs(
            "Write a model repository for NVIDIA Triton Inference Server: NAME_network (the network: "
            "onnxruntime_onnx from an .onnx, tensorrt_plan from an engine built on the serving GPU, "
            "with dynamic batching and an instance group) and NAME (Triton's Python backend: uint8 "
            "frames in, fixed-shape people out: keypoints, scores, count, valid; pre-processing, the "
            "network through BLS, decode in NumPy or with the CUDA kernels: --decode-device). Clients "
            "use Pipeline('triton://HOST:PORT/NAME') or 'higherhrnet-trt run triton://HOST:PORT/NAME'.",
            "The Python backend's environment needs higherhrnet-trt: pip install "
            "'higherhrnet-trt[cv]' in the Triton container ('higherhrnet-trt[cv,cuda]' and NVRTC for "
            "the CUDA decode). See docs/triton.md.",
        ),
        formatter_class=HelpFormatter,
        epilog=("examples:\n"
                "  higherhrnet-trt triton-repo model.onnx -o triton_repo/\n"
                "  higherhrnet-trt triton-repo w32_fp16.engine -o triton_repo/ --name pose --instances 2"),
    )
    p.add_argument("model", metavar="MODEL", help="exported .onnx, or a TensorRT engine with its sidecar")
    p.add_argument("-o", "--output", required=True, metavar="REPO",
                   help="repository folder (made if missing)")
    _served_model_options(p, pipeline_instances=2)
    p.add_argument("--instances", type=_positive_int, default=1, metavar="N",
                   help="instances of the network model (per GPU with --kind gpu)")
    p.add_argument("--kind", choices=("gpu", "cpu"), default="gpu",
                   help="where Triton runs the network's instances (tensorrt_plan needs gpu)")
    p.add_argument("--force", action="store_true", help="replace model folders of these names in REPO")
    p.set_defaults(func=triton_repo)

    p = sub.add_parser(
        "serve",
        help="serve the whole pipeline on this machine through PyTriton (HTTP, gRPC, metrics)",
        description=paragraphs(
            "Serve MODEL behind Triton's own front end, started by PyTriton (pip install "
            "'higherhrnet-trt[triton-server]', numpy < 2): HTTP, gRPC, dynamic batching and "
            "Prometheus metrics. The network runs in this process with a local backend (NAME_network, "
            "bound with PyTriton); the pipeline model of 'triton-repo' runs in the Triton binary's "
            "Python backend. Bound to 127.0.0.1 unless --host says otherwise.",
            "Clients: Pipeline('triton://HOST:PORT/NAME') or 'higherhrnet-trt run "
            "triton://HOST:PORT/NAME --source ...' (pip install 'higherhrnet-trt[triton]'). Ctrl-C "
            "or SIGTERM stops the server.",
        ),
        formatter_class=HelpFormatter,
        epilog=("examples:\n"
                "  higherhrnet-trt serve outputs/demo/demo.onnx\n"
                "  higherhrnet-trt run triton://127.0.0.1:8000/demo --source photo.jpg --save-dir out/"),
    )
    p.add_argument("model", metavar="MODEL", help="exported .onnx (or a model any local backend runs)")
    p.add_argument("--host", type=bounds_host, default="127.0.0.1",
                   help="address to bind (0.0.0.0 = every interface: only on a trusted network)")
    p.add_argument("--http-port", type=PORT, default=8000, help="HTTP port")
    p.add_argument("--grpc-port", type=PORT, default=8001, help="gRPC port")
    p.add_argument("--metrics-port", type=PORT, default=8002, help="Prometheus metrics port")
    _served_model_options(p, pipeline_instances=1)
    p.add_argument("--backend", default="auto",
                   help="local backend running the network: auto (from the extension), onnxruntime, "
                        "openvino, tensorrt, ...")
    p.add_argument("--threads", type=THREADS, default=0,
                   help="onnxruntime / openvino: CPU threads (0 = the library's default)")
    p.add_argument("--log-file", metavar="FILE",
                   help="Triton's log (default: a temporary file, named if the server fails)")
    p.set_defaults(func=serve)


def _decode(args) -> dict:
    return {"max_people": args.max_people, "detection_threshold": args.det_thr}


def triton_repo(args) -> int:
    import os
    import sys

    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.serving.repository import write_repository

    folders = write_repository(
        args.model, args.output, name=args.name or "", max_batch=args.max_batch, instances=args.instances,
        pipeline_instances=args.pipeline_instances, gpu=args.kind == "gpu",
        queue_delay_us=args.queue_delay_us, scales=args.scales,
        project2image=not args.heatmap_resolution, decode=_decode(args), decode_device=args.decode_device,
        force=args.force)
    name = os.path.basename(folders[1])
    print(f"wrote {', '.join(folders)}\n"
          f"serve: tritonserver --model-repository={os.path.abspath(args.output)} (needs "
          f"higherhrnet-trt[cv] in the Python backend's environment; [cv,cuda] and NVRTC for the "
          f"CUDA decode)\n"
          f"client: higherhrnet-trt run triton://HOST:8000/{name} --source ...", file=sys.stderr)
    return 0


def serve(args) -> int:
    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.serving.server import print_ready
    from higherhrnet_trt.serving.server import serve as run_server

    options = {"threads": args.threads} if args.threads else {}
    run_server(args.model, name=args.name or "", host=args.host, http_port=args.http_port,
               grpc_port=args.grpc_port, metrics_port=args.metrics_port, max_batch=args.max_batch,
               queue_delay_us=args.queue_delay_us, pipeline_instances=args.pipeline_instances,
               scales=args.scales, project2image=not args.heatmap_resolution, decode=_decode(args),
               decode_device=args.decode_device, backend=args.backend, log_file=args.log_file,
               on_ready=print_ready, **options)
    return 0
