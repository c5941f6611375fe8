"""Released HigherHRNet weights by name: a registry, a cache folder, a verified, resumable download.

    higherhrnet-trt weights list
    higherhrnet-trt weights download mmpose_w32_512
    higherhrnet-trt export --checkpoint mmpose_w32_512 -o w32.onnx      # --config from the name
    from higherhrnet_trt.export import export; export("mmpose_w32_512")

Like torchvision's weight enums and Ultralytics' model names, a name stands for one released file
with what is known about it: its ``--config``, input size, published AP and licence. Files live in
the cache folder as ``DIR/NAME/FILE`` (``DIR``: ``--cache-dir``, else ``$HIGHERHRNET_TRT_WEIGHTS_DIR``,
else ``$XDG_CACHE_HOME/higherhrnet_trt/weights``, ``~/.cache`` by default), one sub-folder per name:
the official COCO and CrowdPose W32-512 files share a file name.

Download: from the entry's URL, or from ``--weights-url`` / ``$HIGHERHRNET_TRT_WEIGHTS_URL`` + ``/FILE``
(a mirror for air-gapped fleets: an HTTP(S) server, a ``file://`` URL or a local folder). The bytes
go to ``FILE.part`` beside the final name; a cut connection resumes from its size with an HTTP Range
request (a server that ignores Range sends the whole file again), also in a later run after Ctrl-C.
The file's sha256 is checked before it is renamed into place and on every use; a mismatch is
refused and the partial file removed. MMPose's file names carry the first 8 hex digits of the
file's sha256 (mmcv's publish_model): where only that prefix is known, the prefix is checked and
the full digest is printed so it can be recorded in :data:`REGISTRY`.

Entries can be added or replaced for a fleet's own files or for tests: ``$HIGHERHRNET_TRT_WEIGHTS_REGISTRY``
names a JSON file holding a list of objects with the fields of :class:`Weights`.

Only the standard library is imported at module level (the CLI's ``--help`` stays instant).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, fields

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.formats import cache_dir

#: Mirror base URL (or local folder) that replaces every entry's URL: BASE/FILE.
ENV_URL = "HIGHERHRNET_TRT_WEIGHTS_URL"
#: The cache folder (default: $XDG_CACHE_HOME/higherhrnet_trt/weights).
ENV_DIR = "HIGHERHRNET_TRT_WEIGHTS_DIR"
#: A JSON file of extra or replacing entries (a list of Weights objects).
ENV_REGISTRY = "HIGHERHRNET_TRT_WEIGHTS_REGISTRY"

MMPOSE_BASE = "https://download.openmmlab.com/mmpose/bottom_up/"
OFFICIAL_REPO = "https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation"


@dataclass(frozen=True)
class Weights:
    """One released checkpoint.

    file: its file name (cache: DIR/NAME/FILE; mirror: BASE/FILE).
    ap: published COCO OKS AP, 0-1 (None where none is published); ap_source says which test.
    url: direct download URL; "" where only a person can fetch it (then ``manual`` says where).
    sha256: the file's full sha256 (64 hex digits) or a published prefix of it ("" where unknown).
    """

    name: str
    file: str
    config: str
    input_size: int
    ap: float | None
    ap_source: str
    licence: str
    url: str = ""
    sha256: str = ""
    manual: str = ""
    notes: str = ""

    @property
    def sha256_is_full(self) -> bool:
        return len(self.sha256) == 64


_MMPOSE_LICENCE = "Apache-2.0 (MMPose's licence; MMPose states no separate terms for its model-zoo weights)"
_MMPOSE_AP = "COCO val2017, single scale, flip test (MMPose model zoo)"
_OFFICIAL_LICENCE = "MIT (HigherHRNet's repository licence; no separate terms stated for the weights)"
_OFFICIAL_AP = "COCO val2017, single scale, flip test (HigherHRNet README)"
_OFFICIAL_MANUAL = (f"the HigherHRNet model zoo (Google Drive / OneDrive, linked from {OFFICIAL_REPO}, "
                    "'Main Results')")


def _mmpose(name: str, file: str, config: str, size: int, ap: float) -> Weights:
    # mmcv's publish_model names a file NAME-<first 8 hex digits of its sha256>_DATE.pth.
    prefix = file.rsplit("-", 1)[1].split("_")[0]
    return Weights(name, file, config, size, ap, _MMPOSE_AP, _MMPOSE_LICENCE, url=MMPOSE_BASE + file,
                   sha256=prefix, notes="MMPose 0.x checkpoint (backbone./keypoint_head. keys)")


def _official(name: str, file: str, config: str, size: int, ap: float | None, what: str) -> Weights:
    return Weights(name, file, config, size, ap, _OFFICIAL_AP if ap else "", _OFFICIAL_LICENCE,
                   manual=f"{what} of {_OFFICIAL_MANUAL}")


#: The released HigherHRNet checkpoints this toolkit decodes as published. Not listed: MMPose's UDP
#: variants (see NOT_LISTED).
REGISTRY: dict[str, Weights] = {w.name: w for w in [
    _mmpose("mmpose_w32_512", "higher_hrnet32_coco_512x512-8ae85183_20200713.pth", "w32_512", 512, 0.677),
    _mmpose("mmpose_w32_640", "higher_hrnet32_coco_640x640-a22fe938_20200712.pth", "w32_640", 640, 0.686),
    _mmpose("mmpose_w48_512", "higher_hrnet48_coco_512x512-60fedcbc_20200712.pth", "w48_512", 512, 0.686),
    _official("official_w32_512", "pose_higher_hrnet_w32_512.pth", "w32_512", 512, 0.671, "the COCO folder"),
    _official("official_w32_640", "pose_higher_hrnet_w32_640.pth", "w32_640", 640, 0.685, "the COCO folder"),
    _official("official_w48_640", "pose_higher_hrnet_w48_640.pth", "w48_640", 640, 0.699, "the COCO folder"),
    _official("official_crowdpose_w32_512", "pose_higher_hrnet_w32_512.pth", "crowdpose_w32_512", 512, None,
              "the CrowdPose folder"),
]}

#: Why some releases are not in the registry (shown by 'weights list').
NOT_LISTED = (
    "MMPose's UDP variants (higher_hrnet32_coco_512x512_udp-8cc64794, "
    "higher_hrnet48_coco_512x512_udp-7cad61ef) "
    "are not listed: MMPose trains and tests them with unbiased data processing (use_udp: another "
    "resize, heatmap-to-image transform and aggregation), which this toolkit's decoder does not "
    "implement, so their keypoints would come out shifted."
)
#: What all the listed networks were trained on.
DATA_NOTE = ("All are trained on COCO train2017 (CrowdPose: CrowdPose train); COCO's annotations are CC BY "
             "4.0, its images keep their Flickr owners' terms.")


# --------------------------------------------------------------------------------------------------
# Registry and folders
# --------------------------------------------------------------------------------------------------


def registry() -> dict[str, Weights]:
    """The built-in entries, with those of ``$HIGHERHRNET_TRT_WEIGHTS_REGISTRY`` added or replacing."""
    entries = dict(REGISTRY)
    path = os.environ.get(ENV_REGISTRY)
    if path:
        entries.update({w.name: w for w in _read_registry(path)})
    return entries


def _read_registry(path: str) -> list[Weights]:
    known = {f.name for f in fields(Weights)}
    try:
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
        out = []
        for item in items:
            unknown = set(item) - known
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
            out.append(Weights(**item))
        return out
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"${ENV_REGISTRY}={path}: not a JSON list of weights entries ({e}); fix the file "
                        f"or unset {ENV_REGISTRY}") from None


def get(name: str) -> Weights:
    """The entry called ``name`` (UserError naming the known ones otherwise)."""
    entries = registry()
    if name not in entries:
        raise UserError(f"unknown weights name {name!r}: choose one of {', '.join(entries)} "
                        "('higherhrnet-trt weights list'), or pass a .pth file")
    return entries[name]


def default_cache_dir() -> str:
    """``$HIGHERHRNET_TRT_WEIGHTS_DIR``, else ``$XDG_CACHE_HOME/higherhrnet_trt/weights``."""
    return os.environ.get(ENV_DIR) or cache_dir("weights")


def cached_path(entry: Weights, cache_dir: str | None = None) -> str:
    """Where ``entry``'s file lives in the cache: DIR/NAME/FILE (it may not exist)."""
    return os.path.join(cache_dir or default_cache_dir(), entry.name, entry.file)


def download_url(entry: Weights, weights_url: str | None = None) -> str:
    """The URL to fetch: mirror BASE/FILE (``weights_url``, else ``$HIGHERHRNET_TRT_WEIGHTS_URL``),
    else the entry's own URL ("" when there is none)."""
    base = weights_url or os.environ.get(ENV_URL) or ""
    if not base:
        return entry.url
    if "://" not in base:  # a local folder (a USB stick, an NFS mount)
        from pathlib import Path

        base = Path(base).resolve().as_uri()
    return base.rstrip("/") + "/" + entry.file


# --------------------------------------------------------------------------------------------------
# Hashes
# --------------------------------------------------------------------------------------------------


def sha256_of(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def matches(digest: str, entry: Weights) -> bool:
    """True if the full hex ``digest`` is the entry's (or starts with its published prefix)."""
    return digest.startswith(entry.sha256.lower())


def verify(path: str, entry: Weights, log=None) -> str:
    """Check ``path`` against the entry's sha256 before use; returns the full digest. Raises a
    UserError on a mismatch; with no published digest, says the file is used unverified."""
    log = log or _stderr
    digest = sha256_of(path)
    if not entry.sha256:
        log(f"note: no published sha256 for {entry.name}: {path} is used unverified (sha256 {digest})")
    elif not matches(digest, entry):
        raise UserError(f"{path} has sha256 {digest[:16]}..., not {entry.name}'s published "
                        f"{entry.sha256[:16]}: it is damaged or another file; delete it and run "
                        f"'higherhrnet-trt weights download {entry.name}'")
    return digest


# --------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------


class _Cut(Exception):
    """The connection ended before the announced length arrived."""


def download(name: str, cache_dir: str | None = None, weights_url: str | None = None,
             progress: bool = True, retries: int = 3, timeout: float = 30.0, log=None) -> str:
    """The verified file of ``name`` in the cache, fetched first if it is not there; its path.

    retries: how many times a cut connection is resumed (HTTP Range) before giving up; the partial
        file stays for a later run. timeout: seconds without data before a connection counts as cut.
    """
    log = log or _stderr
    entry = get(name)
    dest = cached_path(entry, cache_dir)
    if os.path.isfile(dest):
        verify(dest, entry, log)
        return dest
    url = download_url(entry, weights_url)
    if not url:
        raise UserError(f"{entry.name} cannot be downloaded by a script: get {entry.file} from "
                        f"{entry.manual} and put it at {dest} (or pass the file to --checkpoint)")
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the cache folder {os.path.dirname(dest)} ({e.strerror}): choose "
                        f"another with --cache-dir or ${ENV_DIR}") from None
    part = dest + ".part"
    _fetch_resuming(url, part, dest, progress, retries, timeout, log)
    digest = sha256_of(part)
    if entry.sha256 and not matches(digest, entry):
        os.remove(part)
        raise UserError(f"{entry.file} from {url} has sha256 {digest[:16]}..., not the published "
                        f"{entry.sha256[:16]}: removed it; the download was damaged or the server sent "
                        "another file: try again, or check the mirror")
    os.replace(part, dest)
    if not entry.sha256:
        log(f"note: no published sha256 for {entry.name}: not verified (sha256 {digest})")
    elif not entry.sha256_is_full:
        log(f"verified: sha256 {digest} starts with the published {entry.sha256} (only the prefix is "
            "published)")
    log(f"saved {dest}")
    return dest


def _fetch_resuming(url: str, part: str, dest: str, progress: bool, retries: int, timeout: float,
                    log) -> None:
    """Fetch ``url`` into ``part``, resuming after each cut connection, up to ``retries`` times."""
    import http.client
    import urllib.error

    cut = (_Cut, http.client.IncompleteRead, ConnectionError, TimeoutError)
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, progress, timeout)
            return
        except urllib.error.HTTPError as e:
            raise UserError(f"{url}: HTTP {e.code} {e.reason}: fetch {os.path.basename(dest)} another "
                            f"way and put it at {dest}, or fix --weights-url / ${ENV_URL}") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError) and attempt < retries:
                log(f"connection to {url} timed out; trying again ({attempt + 1}/{retries})")
                continue
            raise UserError(f"cannot reach {url} ({e.reason}): without network, fetch "
                            f"{os.path.basename(dest)} from that URL elsewhere and put it at {dest}, or "
                            f"set ${ENV_URL} (--weights-url) to a mirror") from None
        except cut as e:
            have = os.path.getsize(part) if os.path.exists(part) else 0
            if attempt == retries:
                raise UserError(f"the download of {url} stopped at {have} bytes {retries + 1} times ({e}): "
                                f"run the same command again to resume from {part}") from None
            log(f"connection cut at {have} bytes ({e or type(e).__name__}); resuming "
                f"({attempt + 1}/{retries})")


def _fetch(url: str, part: str, progress: bool, timeout: float) -> None:
    """Append ``url``'s bytes to ``part`` from its current size (HTTP Range), to the end.

    Raises _Cut when fewer bytes arrive than the server announced. A server that answers a Range
    request with the whole file (200 instead of 206, or a file:// URL) restarts the part from 0; a
    416 (the part is already as long as the file, or longer) also starts again.
    """
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    have = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": "higherhrnet-trt"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            os.remove(part)
            return _fetch(url, part, progress, timeout)
        raise
    with resp:
        if have and getattr(resp, "status", None) != 206:
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with open(part, "ab" if have else "wb") as f, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
            desc=os.path.basename(part)[: -len(".part")], disable=None if progress else True,
            dynamic_ncols=True, leave=False,
        ) as bar:
            for block in iter(lambda: resp.read(1 << 16), b""):
                f.write(block)
                bar.update(len(block))
        if total is not None and os.path.getsize(part) < total:
            raise _Cut(f"{os.path.getsize(part)} of {total} bytes")


# --------------------------------------------------------------------------------------------------
# What export and demo call
# --------------------------------------------------------------------------------------------------


def resolve(checkpoint: str, cache_dir: str | None = None, weights_url: str | None = None,
            progress: bool = True, log=None) -> tuple[str, Weights | None]:
    """A checkpoint argument -> (file path, its entry or None). An existing file, or anything
    spelled as a path, is returned as is; otherwise it is a name (UserError if unknown), downloaded
    (or found in the cache) and verified."""
    if os.path.exists(checkpoint) or os.sep in checkpoint or os.path.splitext(checkpoint)[1]:
        return checkpoint, None  # a path: the checkpoint loader reports a missing file
    entry = get(checkpoint)  # neither a file nor a path: a name, known or not
    return download(entry.name, cache_dir, weights_url, progress=progress, log=log), entry


def describe(entry: Weights, cache_dir: str | None = None) -> dict:
    """The entry as JSON-ready data, with where its file is cached and whether it is there."""
    d = asdict(entry)
    d["path"] = cached_path(entry, cache_dir)
    d["cached"] = os.path.isfile(d["path"])
    d["downloadable"] = bool(entry.url)
    return d


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def add_cli_options(parser) -> None:
    """--cache-dir and --weights-url, the same on every command that takes a weights name."""
    parser.add_argument("--cache-dir", metavar="DIR",
                        help=f"folder of downloaded weights, one sub-folder per name (default: "
                             f"${ENV_DIR}, else $XDG_CACHE_HOME/higherhrnet_trt/weights, i.e. "
                             "~/.cache/higherhrnet_trt/weights)")
    parser.add_argument("--weights-url", metavar="URL",
                        help=f"mirror to fetch weights from instead of their published URLs: URL/FILE "
                             f"(http(s)://, file:// or a local folder; default: ${ENV_URL}), for machines "
                             "without internet access")
