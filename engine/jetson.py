"""Which Jetsons are supported: JetPack 6.1 or 6.2 (L4T R36.4, TensorRT 10.3, CUDA 12.6).

JetPack 6.0 (L4T R36.2 / R36.3) ships TensorRT 8.6 and JetPack 5 (R35) TensorRT 8.5: neither
builds or runs this project's engines (strongly typed networks, TensorRT 10 APIs). On a Jetson
(``/etc/nv_tegra_release`` exists) :func:`check_jetson` refuses an older release in one line that
names the versions found; elsewhere it does nothing. The TensorRT builder and runtime call it when
they import JetPack's ``tensorrt`` (engine/flavors.py).
"""

from __future__ import annotations

import re

from higherhrnet_trt.core.errors import UserError

#: The release file every L4T (JetPack's Linux) writes: "# R36 (release), REVISION: 4.3, ...".
RELEASE_FILE = "/etc/nv_tegra_release"
#: Oldest supported L4T and TensorRT (JetPack 6.1).
MIN_L4T = (36, 4)
MIN_TENSORRT = (10, 3)
#: L4T release -> JetPack, for the message (NVIDIA's JetPack archive).
JETPACK_OF_L4T = {(35, 1): "5.0.2", (35, 2): "5.1", (35, 3): "5.1.1", (35, 4): "5.1.2",
                  (35, 5): "5.1.3", (35, 6): "5.1.4", (36, 2): "6.0 DP", (36, 3): "6.0",
                  (36, 4): "6.1 or 6.2"}


def l4t_version(release_text: str) -> tuple[int, ...] | None:
    """``# R36 (release), REVISION: 4.3, GCID: ...`` -> (36, 4, 3); None when it does not parse."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release_text)
    if not m:
        return None
    return (int(m.group(1)), *(int(p) for p in m.group(2).strip(".").split(".") if p))


def version_tuple(version: str) -> tuple[int, ...]:
    """``"10.3.0.30"`` -> (10, 3, 0, 30); the leading numeric parts only (``"8.6.2.3"``)."""
    parts = []
    for p in version.split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


def jetpack_name(l4t: tuple[int, ...]) -> str:
    """(36, 3, 0) -> "JetPack 6.0 (L4T R36.3.0)"."""
    jetpack = JETPACK_OF_L4T.get(tuple(l4t[:2]))
    release = "R" + ".".join(str(v) for v in l4t)
    return f"JetPack {jetpack} (L4T {release})" if jetpack else f"L4T {release}"


def check_jetson(tensorrt_version: str | None, release_path: str = RELEASE_FILE) -> None:
    """Raise UserError on a Jetson older than JetPack 6.1 or with a TensorRT older than 10.3.

    tensorrt_version: ``tensorrt.__version__`` of the module about to be used (None: not checked).
    release_path: the L4T release file; a machine without it is not a Jetson and is not checked.
    """
    try:
        with open(release_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return
    l4t = l4t_version(text)
    trt = version_tuple(tensorrt_version) if tensorrt_version else None
    old_l4t = l4t is not None and l4t[:2] < MIN_L4T
    old_trt = trt is not None and len(trt) >= 2 and trt[:2] < MIN_TENSORRT
    if not (old_l4t or old_trt):
        return
    found = jetpack_name(l4t) if l4t else "an unknown JetPack"
    found += f" with TensorRT {tensorrt_version}" if tensorrt_version else ""
    raise UserError(f"{found} found: higherhrnet-trt needs JetPack 6.1 or 6.2 (L4T R36.4, TensorRT "
                    "10.3 or newer): upgrade JetPack (SDK Manager, or 'sudo apt install "
                    "nvidia-jetpack' from the r36.4 repository), or run the ONNX with onnxruntime")
