#!/usr/bin/env bash
# The GPU checks of issues 16 and 21 as one prepared run for a lent GPU machine (the `device` tool): each stage is
# skipped when the time left is short, so the whole run ends within GPU_CHECK_SECONDS (default 540). Everything it
# produces is in $OUT: log.txt (every stage's output and its exit status and seconds) and results.tar.gz (the tables
# and the runs' result records).
#
# Stages, in this order (name them as arguments to run a subset):
#   perf      issue 21: our training path against a bare PyTorch loop on the GPU, fp32 and bf16 + channels_last
#             (`python -m benchmark.perf.train --device cuda`, cifar_resnet18 at batch 128)
#   perf_host the same in fp32 with batches copied from the host (`--resident false`): what resident data gains
#   resnet18  issue 16: Table 1 (k = 16, seed 0, six rows) from the paper's ResNet-18 (`cifar_resnet18`) trained by the
#             paper's recipe in bf16 (`fashion_mnist_sgd_bf16`), its pretraining included
#   table1    issue 21: the whole Fashion-MNIST Table 1 (4 k × 3 seeds, the committed `narrow_cnn_bn` original);
#             resumable, so a stage cut short still says how far it got, and at what rate
#   backbones issue 16: Table 1 (k = 4 / 16 / 64, seed 0) on `narrow_mobilenetv2` and `small_vit`
#
# Preparation on the CPU machine, once per session (both folders are git-ignored through .git/info/exclude):
#   printf '/.whl/\n/.gpu-data/\n' >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl jsonargparse==4.53.0 docstring_parser==0.18.0 typeshed_client==2.15.0 kneed==0.9.0
#   mkdir -p .gpu-data && cp /usr/share/datasets/fashion-mnist/*.gz .gpu-data/
# then, with the device tool: run(command="bash scripts/gpu_check.sh", carry=[".whl", ".gpu-data"], timeout_s=600).
# The GPU image has torch, lightning, torchmetrics, timm, scikit-learn and matplotlib; the wheels add the rest.
# On a CPU, smaller settings check the script itself in a few minutes:
#   GPU_CHECK_DEVICE=cpu PY=.venv/bin/python PERF_ARGS="--datasets [digits] --repeats 1" \
#   RESNET_ARGS="--dataset digits --arch narrow_cnn_bn --recipe smoke --ks [16] --seeds [0]" \
#   TABLE1_ARGS="--dataset digits --ks [16] --seeds [0,1]" bash scripts/gpu_check.sh perf resnet18 table1
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
PY=${PY:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
BUDGET=${GPU_CHECK_SECONDS:-540}
START=$(date +%s)
export UNLEARNBENCH_HOME=${UNLEARNBENCH_HOME:-/tmp/gpu_check_home} PYTHONUNBUFFERED=1
RESULTS="$UNLEARNBENCH_HOME/results/suites"
PERF_ARGS=${PERF_ARGS:-"--datasets [fashion_mnist] --arch cifar_resnet18 --recipe smoke --batch_size 128 --repeats 2"}
RESNET_ARGS=${RESNET_ARGS:-"--arch cifar_resnet18 --recipe fashion_mnist_sgd_bf16 --ks [16] --seeds [0]"}
TABLE1_ARGS=${TABLE1_ARGS:-""}
BACKBONE_ARGS=${BACKBONE_ARGS:-"--recipe fashion_mnist_sgd_bf16 --ks [4,16,64] --seeds [0]"}
BACKBONES=${BACKBONES:-"narrow_mobilenetv2 small_vit"}

left() { echo $((BUDGET - ($(date +%s) - START))); }

# stage NAME SECONDS_NEEDED COMMAND...: run COMMAND when SECONDS_NEEDED are left, cut off 15 s before the budget ends.
stage() {
    local name=$1 need=$2
    shift 2
    if [ "$(left)" -lt "$need" ]; then
        echo "== $name: skipped, $(left) s left, needs $need" | tee -a "$LOG"
        return
    fi
    echo "== $name ($(left) s left): $*" | tee -a "$LOG"
    local t0
    t0=$(date +%s)
    timeout --signal=INT --kill-after=10 $(($(left) - 15)) "$@" >>"$LOG" 2>&1
    echo "== $name: exit $? after $(($(date +%s) - t0)) s" | tee -a "$LOG"
}

if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_check_site .whl/*.whl >>"$LOG" 2>&1 \
        && export PYTHONPATH=/tmp/gpu_check_site:${PYTHONPATH:-}
fi
if [ -d .gpu-data ]; then
    mkdir -p "$UNLEARNBENCH_HOME/data" && cp -n .gpu-data/*.gz "$UNLEARNBENCH_HOME/data/"
fi
{
    date -u
    nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    "$PY" -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, 'cuda', torch.cuda.is_available())"
} >>"$LOG" 2>&1

STAGES=${*:-perf perf_host resnet18 table1 backbones}
set -f  # the argument strings hold brackets ([16]) that are not file patterns
for s in $STAGES; do
    case $s in
        perf) stage perf 120 "$PY" -m benchmark.perf.train --device "$DEVICE" --threads null --numerics "[fp32, fast]" $PERF_ARGS ;;
        perf_host) stage perf_host 60 "$PY" -m benchmark.perf.train --device "$DEVICE" --threads null --numerics "[fp32]" --resident false $PERF_ARGS ;;
        resnet18) stage resnet18 240 "$PY" cli.py suite instancewise_table1 --progress false $RESNET_ARGS --results_dir "$RESULTS/resnet18" --out "$OUT/table1-resnet18.md" ;;
        table1) stage table1 120 "$PY" cli.py suite instancewise_table1 --progress false $TABLE1_ARGS --results_dir "$RESULTS/table1" --out "$OUT/table1.md" ;;
        backbones) for arch in $BACKBONES; do
                stage "backbone $arch" 200 "$PY" cli.py suite instancewise_table1 --progress false --arch "$arch" $BACKBONE_ARGS --results_dir "$RESULTS/$arch" --out "$OUT/table1-$arch.md"
            done ;;
        *) echo "== unknown stage $s (perf, perf_host, resnet18, table1, backbones)" | tee -a "$LOG" ;;
    esac
done
if [ -d "$RESULTS" ]; then
    tar -czf "$OUT/results.tar.gz" -C "$UNLEARNBENCH_HOME/results" --exclude='*.pt' --exclude='*.ckpt' suites
fi
echo "== done after $(($(date +%s) - START)) s" | tee -a "$LOG"
