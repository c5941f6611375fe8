#!/usr/bin/env bash
# The prepared run for a lent GPU machine (the `device` tool): what issues 5 and 7 leave NOT RUN on
# the CPU machines, in one command that ends inside the tool's 10-minute limit, results under $OUT.
#
# Here, once per checkout (copies the reference data, downloads the wheels the GPU image lacks):
#   bash benchmarks/gpu_check.sh --fetch
# There (device `run`, carry [".reference", ".whl"], timeout_s 600):
#   bash benchmarks/gpu_check.sh
#
# Steps; each one that cannot run says why in summary.txt, and none stops the others:
#   1. the machine: GPU, driver, versions of torch / cuda-python / CuPy / ONNX Runtime
#   2. GPU tests (issue 5): kernels against the NumPy decode on the official vectors and fuzz cases
#      (with decode time per frame against NumPy), device-array interop, no device-memory growth,
#      torch backend FP16 + CUDA graph, the all-GPU pipeline on a checkpoint (torch network) against
#      the NumPy pipeline, the Triton pipeline model decoding with the kernels (issue 17) against
#      it. Engine tests skip: the GPU image has no TensorRT, and TensorRT-RTX (95 MB wheel, over
#      the 64 MiB carry) runs engines only on compute capability 7.5 / 8.6 / 8.9 / 12.x, not on an
#      H100/H200 (9.0).
#   3. the training scenes, rendered on every core
#   4. in parallel until the deadline: demo-model training (issue 7) on the GPU with DataLoader
#      workers, fp16 weights + log + diagnostics to $OUT (INIT_FROM=path starts from CPU-trained
#      weights: put them in .reference/); memory soak of the all-GPU pipeline on the torch network
#      (SOAK_FRAMES, host + device memory; it shares the GPU with the training: a memory result, not
#      a speed one); and, when
#      its sdist is in .whl/, pycuda built from source + its interop test.
#
# Environment: OUT (default /tmp/gpu_check), DEADLINE_S (560: seconds after start by which every
# step has ended), TRAIN_MINUTES (6, cut to what the deadline leaves), TRAIN_DEVICE (cuda),
# INIT_FROM, TRAIN_ARGS (extra trainer options), SOAK_FRAMES (10000), SCENES (3000), PYTHON (python3).
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

case "${1:-}" in
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    ""|--fetch) ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
if [ "${1:-}" = "--fetch" ]; then
    ref=${HIGHERHRNET_TRT_REFERENCE:-$ROOT/../shared/reference}
    mkdir -p .reference && cp -r "$ref"/. .reference/ || { echo "no reference data at $ref"; exit 1; }
    pip=(${PYTHON:-python3} -m pip download -q --no-deps -d .whl)
    plat=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    "${pip[@]}" "${plat[@]}" pycocotools==2.0.11 || echo "pycocotools wheel not fetched"
    # pycuda is a source build (needs libcuda and nvcc: only the GPU machine has them) + pure-Python needs.
    "${pip[@]}" --no-binary=:all: --no-build-isolation pycuda || echo "pycuda sdist not fetched"
    "${pip[@]}" "${plat[@]}" pytools platformdirs mako siphash24 || echo "pycuda's dependencies not fetched"
    du -sh .reference .whl
    exit 0
fi

OUT=${OUT:-/tmp/gpu_check}
TRAIN_MINUTES=${TRAIN_MINUTES:-6}
DEADLINE_S=${DEADLINE_S:-560}  # the device run's timeout_s is 600: everything ends before this
TRAIN_DEVICE=${TRAIN_DEVICE:-cuda}
SOAK_FRAMES=${SOAK_FRAMES:-10000}
SCENES=${SCENES:-3000}
PY=${PYTHON:-python3}
CORES=$(nproc)
WORK=${WORK:-/tmp/gpu_check_work}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
# pycuda's build looks for nvcc (CUDA_ROOT) on PATH.
[ -d /usr/local/cuda/bin ] && case ":$PATH:" in *:/usr/local/cuda/bin:*) ;; *) export PATH="$PATH:/usr/local/cuda/bin" ;; esac
T0=$(date +%s)
say() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/summary.txt"; }

# 1. the machine ---------------------------------------------------------------------------------
say "host: $(uname -m), $CORES cores; GPU: $(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total \
    --format=csv,noheader 2>/dev/null || echo none)"
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
        .whl/*.whl && export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}" || say "carried wheels did not install"
fi
# This checkout as the namespace package higherhrnet_trt (what setup.py's package_dir maps: every part
# of its PARTS), no install.
mkdir -p "$WORK/pkg/higherhrnet_trt"
parts=$($PY - <<'EOF'
import ast
tree = ast.parse(open("setup.py").read())
print(" ".join(next(ast.literal_eval(n.value) for n in tree.body
                    if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PARTS")))
EOF
)
for part in $parts; do ln -sfn "$ROOT/$part" "$WORK/pkg/higherhrnet_trt/$part"; done
export PYTHONPATH="$WORK/pkg${PYTHONPATH:+:$PYTHONPATH}"
[ -d .reference ] && export HIGHERHRNET_TRT_REFERENCE="$ROOT/.reference"
say "$($PY - <<'EOF' 2>&1
import importlib
out = []
for name in ("numpy", "torch", "cuda.bindings", "cupy", "onnxruntime", "cv2", "pycocotools", "pycuda"):
    try:
        out.append(f"{name} {getattr(importlib.import_module(name), '__version__', '?')}")
    except Exception as e:  # noqa: BLE001 - a report, not a check
        out.append(f"{name} missing ({type(e).__name__})")
print("; ".join(out))
EOF
)"

# 2. GPU tests (before anything else shares the GPU: their timings are clean) ----------------------
timeout 200 $PY -m pytest -p no:cacheprovider -m gpu -v -s -rs tests/kernels/test_gpu.py \
    tests/runtime/test_backend_torch.py tests/runtime/test_gpu_pipeline.py tests/runtime/test_backend_tensorrt.py tests/bench/test_soak.py \
    tests/serving/test_decode_device.py \
    > "$OUT/gpu_tests.log" 2>&1
say "GPU tests (rc $?): $(tail -n 1 "$OUT/gpu_tests.log")"

# 3. scenes for the training, on every core -------------------------------------------------------
scenes_ok=
if timeout 90 $PY -m higherhrnet_trt.benchmarks.scenes --out "$WORK/train" --num "$SCENES" --seed 1 \
        --workers "$CORES" > "$WORK/scenes.log" 2>&1 \
   && timeout 30 $PY -m higherhrnet_trt.benchmarks.scenes --out "$WORK/val" --num 20 --seed 1000 \
        >> "$WORK/scenes.log" 2>&1; then
    scenes_ok=1
    say "scenes: $(grep -E '^wrote' "$WORK/scenes.log" | head -n 1)"
else
    say "scenes failed: $(tail -n 2 "$WORK/scenes.log" | tr '\n' ' ')"
fi

# 4. in parallel until the deadline: training, memory soak, pycuda --------------------------------
left() { echo $(( DEADLINE_S - ($(date +%s) - T0) )); }
pids=()
if [ -n "$scenes_ok" ]; then
    # The budget the deadline leaves, less ~90 s for start-up, the fp16 save and the diagnostics.
    train_s=$(( $(left) - 90 )); want_s=$(awk "BEGIN{print int($TRAIN_MINUTES * 60)}")
    if [ "$train_s" -ge 60 ]; then
        [ "$want_s" -lt "$train_s" ] && train_s=$want_s
        say "training for $train_s s on $TRAIN_DEVICE${INIT_FROM:+ from $INIT_FROM}"
        # shellcheck disable=SC2086  # TRAIN_ARGS is a list of options
        timeout "$(left)" $PY references/train.py \
            --train "$WORK/train/person_keypoints.json" --val "$WORK/val/person_keypoints.json" \
            --diagnose 20 --out "$WORK/run" --minutes "$(awk "BEGIN{print $train_s / 60}")" \
            --device "$TRAIN_DEVICE" --workers $(( CORES > 8 ? CORES - 4 : 2 )) --threads 4 \
            --batch 32 --lr 2e-3 --init kaiming --fg-weight 10 --fg-until 0.3 --ae-factor 1e-2 \
            --push-loss max --push-margin 2 \
            --rotation 20 --scale 0.75 1.25 --checkpoint-every 60 ${INIT_FROM:+--init-from "$INIT_FROM"} \
            ${TRAIN_ARGS:-} --save "$OUT/demo_w16_256.pth" > "$OUT/train.log" 2>&1 &
        pids+=($!)
    else
        say "training: only $train_s s left before the deadline: NOT RUN"
    fi
fi

# The soak runs trained weights when given (a realistic decode load), else random demo weights.
soak_model=${INIT_FROM:-$WORK/demo_random.pth}
[ -n "${INIT_FROM:-}" ] || $PY - "$soak_model" > "$WORK/soak_model.log" 2>&1 <<'PYEOF'
import sys, torch
from higherhrnet_trt.export.configs import CONFIGS
from higherhrnet_trt.export.model import HigherHRNet
torch.manual_seed(0)
torch.save(HigherHRNet(CONFIGS["demo"]).state_dict(), sys.argv[1])
PYEOF
timeout "$(left)" $PY -m higherhrnet_trt.benchmarks.soak "$soak_model" --gpu-pipeline \
    --frames "$SOAK_FRAMES" --warmup $(( SOAK_FRAMES / 20 )) --every $(( SOAK_FRAMES / 20 > 0 ? SOAK_FRAMES / 20 : 1 )) --no-progress --json "$OUT/soak.json" \
    > "$OUT/soak.log" 2>&1 &
pids+=($!)

if ls .whl/pycuda-*.tar.gz >/dev/null 2>&1; then
    ( timeout 300 $PY -m pip install --no-index --no-deps --no-build-isolation --no-cache-dir \
          --target "$WORK/site" .whl/pycuda-*.tar.gz > "$OUT/pycuda.log" 2>&1 \
      && timeout 60 $PY -m pytest -p no:cacheprovider -m gpu -v -s -rs tests/kernels/test_gpu.py -k pycuda \
          >> "$OUT/pycuda.log" 2>&1 ) &
    pids+=($!)
else
    say "pycuda: no sdist in .whl/ (run --fetch here first): NOT RUN"
fi

for pid in "${pids[@]}"; do wait "$pid"; done
if [ -f "$OUT/train.log" ]; then
    done_lines=$(grep -E '^(trained|wrote|[0-9]+ scenes)|Error' "$OUT/train.log" | tr '\n' ' ')
    say "training: ${done_lines:-did not finish before the deadline (last.pth is in $WORK/run; see train.log)}"
fi
say "soak (GPU pipeline on the torch network, shares the GPU with the training): $(grep -E 'frames \(|GPU used|second half' \
    "$OUT/soak.log" | tr '\n' ' ')"
[ -f "$OUT/pycuda.log" ] && say "pycuda build + interop test: $(tail -n 1 "$OUT/pycuda.log")"
say "done in $(( $(date +%s) - T0 ))s; files: $(ls "$OUT" | tr '\n' ' ')"
