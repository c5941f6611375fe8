#!/usr/bin/env bash
# The compiled CPU decode (kernels/cpu_decode.cpp) built by an aarch64 gcc and run on aarch64 against
# the NumPy decode, bit for bit, on an x86-64 Debian machine (issue 25 item 1: what a Jetson Orin
# runs). No ARM machine is needed: Debian's cross compilers build the library, and qemu user-mode
# emulation runs Debian's arm64 Python and NumPy (a sysroot of their packages) on it.
#
#   bash benchmarks/aarch64_check.sh [options]
#
# Steps (each prints a progress line; the last line is the summary):
#   1. install, when missing (apt-get, as root; --no-install only checks): the arm64 foreign
#      architecture (dpkg --add-architecture arm64 + apt-get update, for step 2's downloads),
#      qemu-user-static, and the cross compilers g++-aarch64-linux-gnu (gcc 12) and, for each other
#      --gcc version V, g++-V-aarch64-linux-gnu (gcc 11 is JetPack 6's);
#   2. build the sysroot, when missing: python3 and python3-numpy for arm64 with their dependencies
#      (about 40 packages, 20 MB; reference BLAS / LAPACK), fetched with apt-get download from the
#      machine's configured apt sources and unpacked with dpkg-deb -x (nothing is installed into the
#      host system; about 100 MB unpacked);
#   3. the flags: kernels/cpu.py's own BASE_FLAGS + _arch_flags() as the arm64 Python evaluates
#      them (no -march there), read through benchmarks/aarch64_compare.py --print-flags;
#   4. per gcc: cross-compile kernels/cpu_decode.cpp with those flags; then kernels/cpu.py's own
#      build_library, run on aarch64 under qemu with that cross compiler as CXX, must give the
#      same library byte for byte (the same flags, so they cannot drift);
#   5. per gcc: benchmarks/aarch64_compare.py under qemu-aarch64 on that library: the official
#      parser vectors (20 cases x 3 modes), the official pipeline maps (3 projections), 2 W32-512
#      scenes, and rough / batched / --random seeded random cases, people and scores bit for bit
#      against the NumPy decode (as tests/kernels/test_cpu.py), with the count of images the
#      compiled code decoded itself and sha256 digests of inputs and outputs;
#   6. with --host-python: the same comparison on this x86-64 machine, and whether aarch64 and
#      x86-64 print the same digests (reported, not a failure: the W32-512 scenes are generated with
#      np.exp, whose last bits NumPy's SIMD code may change between machines).
#
# Options:
#   --sysroot DIR      the arm64 sysroot (default $XDG_CACHE_HOME/higherhrnet_trt/arm64-sysroot,
#                      ~/.cache when XDG_CACHE_HOME is unset); built there when missing
#   --build DIR        the cross-compiled libraries, the package folder the arm64 Python imports
#                      (symlinks to this checkout's core/ decode/ kernels/ benchmarks/) and cpu.py's
#                      cache for step 4 (default $XDG_CACHE_HOME/higherhrnet_trt/aarch64-check)
#   --gcc "V ..."      cross gcc major versions to build and run with (default "12 11")
#   --random N         seeded random cases per run (default 300)
#   --reference DIR    the official vectors (default $HIGHERHRNET_TRT_REFERENCE, else
#                      ../shared/reference beside the repository); without them those are NOT RUN
#   --host-python PY   also run the comparison with this x86-64 Python (NumPy needed) and compare
#   --no-install       install nothing: stop with a message when a tool is missing
#   -h, --help         this text
#
# Exit status: 0 when every comparison matches, 1 on a mismatch or a failed step, 2 on bad options.
# qemu user-mode emulation is not a Jetson: its times mean nothing, and the sysroot is Debian
# bookworm's (Python 3.11, NumPy 1.24), not JetPack's (Python 3.10).
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/higherhrnet_trt
SYSROOT=$CACHE/arm64-sysroot
BUILD=$CACHE/aarch64-check
GCCS="12 11"
RANDOM_CASES=300
REFERENCE=${HIGHERHRNET_TRT_REFERENCE:-$ROOT/../shared/reference}
HOST_PY=""
INSTALL=1

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --sysroot) SYSROOT=${2:?--sysroot needs a folder}; shift 2 ;;
        --build) BUILD=${2:?--build needs a folder}; shift 2 ;;
        --gcc) GCCS=${2:?--gcc needs versions}; shift 2 ;;
        --random) RANDOM_CASES=${2:?--random needs a number}; shift 2 ;;
        --reference) REFERENCE=${2:?--reference needs a folder}; shift 2 ;;
        --host-python) HOST_PY=${2:?--host-python needs a Python}; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        *) echo "aarch64_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$RANDOM_CASES" in ''|*[!0-9]*) echo "aarch64_check.sh: --random takes a number" >&2; exit 2 ;; esac

say() { echo "[aarch64-check] $*"; }
fail() { say "$*"; echo "aarch64-check: FAIL: $*"; exit 1; }
SYSROOT=$(mkdir -p "$SYSROOT" && cd "$SYSROOT" && pwd) || fail "cannot create $SYSROOT"
BUILD=$(mkdir -p "$BUILD" && cd "$BUILD" && pwd) || fail "cannot create $BUILD"
case "$SYSROOT/" in "$ROOT"/*) fail "the sysroot must be outside the repository ($SYSROOT)" ;; esac

# 1. Tools.
cross() { if [ "$1" = 12 ]; then echo aarch64-linux-gnu-g++; else echo "aarch64-linux-gnu-g++-$1"; fi; }
cross_pkg() { if [ "$1" = 12 ]; then echo g++-aarch64-linux-gnu; else echo "g++-$1-aarch64-linux-gnu"; fi; }
missing=()
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
for v in $GCCS; do
    case "$v" in ''|*[!0-9]*) echo "aarch64_check.sh: --gcc takes major versions, e.g. \"12 11\"" >&2; exit 2 ;; esac
    command -v "$(cross "$v")" >/dev/null || missing+=("$(cross_pkg "$v")")
done
have_arm64=0
dpkg --print-foreign-architectures 2>/dev/null | grep -qx arm64 && have_arm64=1
if [ ${#missing[@]} -gt 0 ] || [ $have_arm64 = 0 ]; then
    [ $INSTALL = 1 ] || fail "missing: ${missing[*]} $([ $have_arm64 = 0 ] && echo 'the arm64 apt architecture') (run without --no-install, as root)"
    [ "$(id -u)" = 0 ] || fail "installing ${missing[*]} needs root (apt-get)"
    if [ $have_arm64 = 0 ]; then
        say "adding the arm64 architecture to apt (dpkg --add-architecture arm64; apt-get update)"
        dpkg --add-architecture arm64 || fail "dpkg --add-architecture arm64 failed"
    fi
    say "apt-get update; installing ${missing[*]:-nothing else}"
    apt-get update -qq || fail "apt-get update failed"
    if [ ${#missing[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || fail "apt-get install ${missing[*]} failed"
    fi
else
    say "tools present: qemu-aarch64-static, $(for v in $GCCS; do printf '%s ' "$(cross "$v")"; done)"
fi
QEMU_VERSION=$(qemu-aarch64-static --version | head -1)

# 2. The sysroot.
PY_ARM=$SYSROOT/usr/bin/python3
MARK=$SYSROOT/.aarch64-check-sysroot
if [ -f "$MARK" ] && [ -x "$PY_ARM" ]; then
    say "sysroot present: $SYSROOT"
else
    say "building the arm64 sysroot in $SYSROOT (python3, python3-numpy and their dependencies)"
    # Every dependency, recursively, less the alternatives of one need (BLAS: the reference one) and
    # the tools a package install runs (dpkg, perl, tar), which an unpacked sysroot does not.
    pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances python3:arm64 python3-numpy:arm64 libstdc++6:arm64 2>/dev/null \
           | grep -v '^ ' | grep ':arm64$' \
           | grep -vE '^(libatlas|libblis|libopenblas|libgomp|dpkg|tar|perl|install-info)') \
        || fail "apt-cache depends found no arm64 packages (is the arm64 architecture added and apt updated?)"
    debs=$(mktemp -d "$SYSROOT/../.aarch64-debs.XXXXXX") || fail "no temporary folder"
    sandbox=()
    [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
    # shellcheck disable=SC2086
    (cd "$debs" && apt-get download -qq "${sandbox[@]}" $pkgs) || { rm -rf "$debs"; fail "apt-get download failed"; }
    n=0
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$SYSROOT" || { rm -rf "$debs"; fail "dpkg-deb -x $deb failed"; }; n=$((n + 1)); done
    rm -rf "$debs"
    # What update-alternatives would do on an install: libblas.so.3 / liblapack.so.3 in the search path.
    lib=$SYSROOT/usr/lib/aarch64-linux-gnu
    ln -sfn blas/libblas.so.3 "$lib/libblas.so.3" && ln -sfn lapack/liblapack.so.3 "$lib/liblapack.so.3"
    echo "$pkgs" > "$MARK"
    say "sysroot built: $n packages, $(du -sh "$SYSROOT" | cut -f1)"
fi
arm() { qemu-aarch64-static -L "$SYSROOT" "$PY_ARM" "$@"; }
PKG=$BUILD/pkg
mkdir -p "$PKG/higherhrnet_trt"
for part in core decode kernels benchmarks; do ln -sfn "$ROOT/$part" "$PKG/higherhrnet_trt/$part"; done
export PYTHONPATH=$PKG
ARM_VERSIONS=$(arm -c 'import platform, numpy; print(f"{platform.machine()}: Python {platform.python_version()}, NumPy {numpy.__version__}")') \
    || fail "the arm64 Python does not run under qemu: qemu-aarch64-static -L $SYSROOT $PY_ARM"
say "$QEMU_VERSION; sysroot $ARM_VERSIONS"

# 3. The flags, as kernels/cpu.py picks them on aarch64.
FLAGS_LINE=$(arm -m higherhrnet_trt.benchmarks.aarch64_compare --print-flags) || fail "reading kernels/cpu.py's flags failed"
read -r -a FLAGS <<< "$FLAGS_LINE"
say "kernels/cpu.py's flags on aarch64: $FLAGS_LINE"

# 4 and 5, per gcc.
summary=()
bad=0
for v in $GCCS; do
    cxx=$(command -v "$(cross "$v")")
    gcc_version=$("$cxx" -dumpfullversion 2>/dev/null || "$cxx" -dumpversion)
    lib=$BUILD/cpu_decode_aarch64_gcc$v.so
    say "gcc $gcc_version: $(basename "$cxx") ${FLAGS[*]} -o $lib kernels/cpu_decode.cpp"
    "$cxx" "${FLAGS[@]}" -o "$lib.tmp" "$ROOT/kernels/cpu_decode.cpp" || fail "gcc $gcc_version could not build kernels/cpu_decode.cpp"
    mv "$lib.tmp" "$lib"
    aarch64-linux-gnu-readelf -h "$lib" | grep -q 'Machine: *AArch64' || fail "$lib is not an aarch64 library"
    # kernels/cpu.py's own build on aarch64 (qemu runs the x86-64 cross compiler natively).
    own=$(XDG_CACHE_HOME=$BUILD/cache arm -m higherhrnet_trt.benchmarks.aarch64_compare --build-with "$cxx" | tail -1) \
        || fail "kernels/cpu.py's build_library with $cxx failed on aarch64"
    if cmp -s "$own" "$lib"; then
        same="kernels/cpu.py's own aarch64 build byte-identical"
        say "gcc $gcc_version: $same ($own)"
    else
        same="kernels/cpu.py's own aarch64 build DIFFERS"
        say "gcc $gcc_version: $same: $own vs $lib"
        bad=$((bad + 1))
    fi
    say "gcc $gcc_version: comparing under qemu-aarch64 (minutes: everything runs emulated)"
    out=$BUILD/compare_gcc$v.txt
    arm -m higherhrnet_trt.benchmarks.aarch64_compare --library "$lib" --reference "$REFERENCE" \
        --random "$RANDOM_CASES" | tee "$out"
    rc=${PIPESTATUS[0]}
    last=$(tail -1 "$out")
    n=$(sed -n 's/^[A-Z]*: \([0-9]*\) cases.*/\1/p' <<< "$last")
    if [ "$rc" != 0 ]; then
        bad=$((bad + 1))
        summary+=("gcc $gcc_version FAIL ($last)")
    else
        summary+=("gcc $gcc_version ${n} cases 0 mismatches, $same")
    fi
done

# 6. The same on this machine, and the digests compared.
cross_note=""
if [ -n "$HOST_PY" ]; then
    say "host $(uname -m): the same comparison with $HOST_PY (kernels/cpu.py builds its own library)"
    host_out=$BUILD/compare_host.txt
    "$HOST_PY" -m higherhrnet_trt.benchmarks.aarch64_compare --reference "$REFERENCE" --random "$RANDOM_CASES" \
        | tee "$host_out"
    [ "${PIPESTATUS[0]}" = 0 ] || { bad=$((bad + 1)); summary+=("host $(uname -m) FAIL"); }
    digests() { sed -n 's/^\([a-z]*\): .*inputs sha256 \([0-9a-f]*\), outputs sha256 \([0-9a-f]*\),.*/\1 \2 \3/p' "$1"; }
    same_groups=() diff_inputs=() diff_outputs=()
    while read -r name ins outs; do
        h_ins="" h_outs=""
        read -r _ h_ins h_outs < <(digests "$host_out" | grep "^$name ")
        if [ "$ins" != "$h_ins" ]; then diff_inputs+=("$name")
        elif [ "$outs" != "$h_outs" ]; then diff_outputs+=("$name")
        else same_groups+=("$name"); fi
    done < <(digests "$out")
    cross_note="; same people as x86-64: ${same_groups[*]:-none}"
    [ ${#diff_outputs[@]} -gt 0 ] && cross_note+="; other people than x86-64 on the same inputs: ${diff_outputs[*]}"
    [ ${#diff_inputs[@]} -gt 0 ] && cross_note+="; inputs generated differently on x86-64 (not compared): ${diff_inputs[*]}"
    say "aarch64 (gcc $gcc_version) against x86-64${cross_note}"
fi

status=OK
[ $bad = 0 ] || status=FAIL
joined=$(printf '%s; ' "${summary[@]}")
echo "aarch64-check: $status: ${joined%; }${cross_note} ($ARM_VERSIONS under $QEMU_VERSION)"
[ $bad = 0 ]
