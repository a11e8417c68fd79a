#!/bin/sh
# experiments/ptq/run.sh — post-training weight quantization at 4 and 3 bits:
# RTN vs GPTQ vs PowerQuant vs NUPES (our reading), on all-MiniLM-L6-v2 and on
# the small models trained by experiments/outliers/run.sh.
#
#   experiments/ptq/run.sh minilm     (~30 minutes on 2 shared cores)
#   experiments/ptq/run.sh small      (the softmax, seed-0 vit/gpt/bert of
#                                      experiments/outliers; ~15 minutes)
#
# minilm: (NUPES from RTN codes is left to the small models, for time)
# `lowbit import`, `lowbit stats` (512 sentences), the float
# embeddings of the first 2000 lines of the Austen validation split (Jane
# Austen's Persuasion), then for every method and bit width `lowbit ptq`
# (weight-only, per output channel, 8 calibration batches of 16 training
# lines) and `lowbit embed --reference` (cosine of the quantized and float
# embeddings, sentence by sentence); also W8A8 (min-max and percentile
# activation ranges, and with only the linear layers' inputs quantized) and
# GPTQ W4A8, with integer GEMMs.
# small: `lowbit ptq --eval` of each method and bit width (16 calibration
# batches of 16 training examples).
# Then experiments/ptq/report.py rewrites doc/results_ptq.md.
#
# Environment: LOWBIT (default `lowbit`), LOWBIT_EXP_DIR (default
# ~/.cache/lowbit/experiments), THREADS (default 1), NUPES_ITERS (default
# 100 for minilm, 300 for small), REPORT (default doc/results_ptq.md).
set -eu
WHAT=${1:?usage: run.sh minilm|small}
LOWBIT=${LOWBIT:-lowbit}
THREADS=${THREADS:-1}
BASE=${LOWBIT_EXP_DIR:-$HOME/.cache/lowbit/experiments}
OUT=$BASE/ptq
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export OMP_NUM_THREADS=$THREADS
mkdir -p "$OUT"

# method name -> lowbit ptq options
opts() {
    case $1 in
    rtn) echo "--method rtn" ;;
    gptq) echo "--method gptq" ;;
    powerquant) echo "--method powerquant" ;;
    nupes) echo "--method nupes --iters $ITERS" ;;
    nupes-rtn) echo "--method nupes --nupes-init rtn --iters $ITERS" ;;
    esac
}

case $WHAT in
minilm)
    ITERS=${NUPES_ITERS:-100}
    D=$OUT/minilm
    mkdir -p "$D"
    [ -f "$D/minilm.safetensors" ] || $LOWBIT import --model minilm --out "$D/minilm.safetensors"
    $LOWBIT stats --checkpoint "$D/minilm.safetensors" --limit 512 --threads "$THREADS" \
        --json "$D/stats.json" > "$D/stats.txt"
    [ -f "$D/fp.npy" ] || $LOWBIT embed --checkpoint "$D/minilm.safetensors" --data sentences \
        --limit 2000 --threads "$THREADS" --out "$D/fp.npy"
    rm -f "$D/ptq.jsonl" "$D/embed.jsonl"
    run() { # NAME PTQ-OPTIONS...
        name=$1
        shift
        echo "== minilm $name"
        # shellcheck disable=SC2068
        $LOWBIT ptq --checkpoint "$D/minilm.safetensors" $@ --calib 8 --batch 16 \
            --threads "$THREADS" --out "$D/$name.safetensors" --json "$D/ptq.jsonl" \
            > "$D/$name.txt" 2>&1
        $LOWBIT embed --checkpoint "$D/$name.safetensors" --data sentences --limit 2000 \
            --threads "$THREADS" --out "$D/$name.npy" --reference "$D/fp.npy" \
            --json "$D/embed.jsonl" >> "$D/$name.txt"
        rm -f "$D/$name.npy"
    }
    for bits in 4 3; do
        for m in rtn gptq powerquant nupes; do
            # shellcheck disable=SC2046
            run "$m-w$bits" $(opts $m) --wbits $bits
        done
    done
    run w8a8 --method w8a8
    run w8a8p --method w8a8 --act-range percentile
    run w8a8-linear --method w8a8 --act-sites linear
    run gptq-w4a8 --method gptq --wbits 4 --abits 8
    ;;
small)
    ITERS=${NUPES_ITERS:-300}
    for model in vit gpt bert; do
        ckpt=$BASE/outliers/$model-softmax-s0/checkpoint.safetensors
        if [ ! -f "$ckpt" ]; then
            echo "skip $model: run experiments/outliers/run.sh $model first" >&2
            continue
        fi
        D=$OUT/$model
        mkdir -p "$D"
        rm -f "$D/ptq.jsonl"
        for bits in 4 3; do
            for m in rtn gptq powerquant nupes nupes-rtn; do
                echo "== $model $m w$bits"
                # shellcheck disable=SC2046
                $LOWBIT ptq --checkpoint "$ckpt" $(opts $m) --wbits $bits --calib 16 --batch 16 \
                    --threads "$THREADS" --out "$D/$m-w$bits.safetensors" --eval \
                    --json "$D/ptq.jsonl" > "$D/$m-w$bits.txt" 2>&1
            done
        done
    done
    ;;
*)
    echo "usage: run.sh minilm|small" >&2
    exit 2 ;;
esac
REPORT=${REPORT:-$SRC/doc/results_ptq.md}
/usr/bin/python3 "$SRC/experiments/ptq/report.py" "$OUT" "$REPORT"
echo "wrote $REPORT"
