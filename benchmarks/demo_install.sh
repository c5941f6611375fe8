#!/usr/bin/env bash
# What `make demo` costs on a clean machine: the download, the venv's size and the time to the
# first result, for the runtime-only install the demo makes (numpy, onnxruntime, OpenCV, tqdm).
#
#   bash benchmarks/demo_install.sh [WORK]     (WORK: an empty scratch folder; default a temp one)
#
# 1. cold: a new venv and an empty pip cache (WORK/cache): pip install -e ".[cv]" as the Makefile's
#    demo-setup does, timed; the wheels it installed, fetched again into one folder, are the download.
# 2. warm: a second new venv from that cache: the install the README's "under 90 s with a warm
#    package cache" refers to, timed, then the first `higherhrnet-trt demo`, timed.
# Prints one line per number; record them in benchmarks/RESULTS.md with the machine and its load.
# Needs the package registry (pip's configured index); the checkout is installed editable, not
# copied. PYTHON: the interpreter to make venvs from (default python3).
set -eu -o pipefail
shopt -s inherit_errexit
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d)}
PY=${PYTHON:-python3}
mkdir -p "$WORK"
export PIP_CACHE_DIR="$WORK/cache" PIP_DISABLE_PIP_VERSION_CHECK=1
rm -rf "$WORK/cache" "$WORK/cold" "$WORK/warm" "$WORK/out" "$WORK/wheels"

mb() { du -sm "$1" | cut -f1; }
install() {  # $1: venv folder; prints seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$PY" -m venv "$1"
  "$1/bin/python" -m pip install -q --upgrade pip
  (cd "$REPO" && "$1/bin/python" -m pip install -q -e ".[cv]")
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

cold=$(install "$WORK/cold")
echo "cold install (empty cache): ${cold} s"
# The wheels that install pulled (from the index or a local mirror; the cache keeps only the
# former), downloaded again from the now warm cache into one folder: its size is the download.
"$WORK/cold/bin/python" -m pip freeze --exclude-editable | grep -v '^-e ' > "$WORK/freeze.txt"
"$WORK/cold/bin/python" -m pip download -q --no-deps -d "$WORK/wheels" -r "$WORK/freeze.txt"
echo "download ($(wc -l < "$WORK/freeze.txt") packages): $(mb "$WORK/wheels") MB"
echo "venv size: $(mb "$WORK/cold") MB"
for heavy in torch modelopt openvino tensorrt_rtx tritonclient; do
  if "$WORK/cold/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$heavy') is None)"; then
    echo "UNEXPECTED: $heavy is installed"
  fi
done
warm=$(install "$WORK/warm")
echo "warm install (cache from the first): ${warm} s"
t0=$(date +%s.%N)
"$WORK/warm/bin/higherhrnet-trt" demo --save-dir "$WORK/out" >/dev/null 2>"$WORK/demo.log" || {
  cat "$WORK/demo.log"; exit 1; }
t1=$(date +%s.%N)
first=$(echo "$t1 - $t0" | bc)
echo "first demo run: ${first} s ($(grep -m1 ' frames, ' "$WORK/demo.log"))"
echo "warm install + first demo: $(echo "$warm + $first" | bc) s"
