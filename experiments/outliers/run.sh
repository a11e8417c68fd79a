#!/bin/sh
# experiments/outliers/run.sh — outlier statistics and W8A8 of models trained
# with softmax, clipped softmax and gated attention (Bondarenko et al. 2023,
# Table 2), at lowbit's small scale.
#
#   experiments/outliers/run.sh vit|gpt|bert [SEED...]       (default seeds: 0 1)
#
# For every seed and attention kind: `lowbit train` (skipped when the
# checkpoint exists), `lowbit stats` (infinity norm, kurtosis, attention
# first-token mass on 256 evaluation examples), and `lowbit ptq --method
# w8a8 --eval` twice: activation ranges by running min-max (the paper's BERT
# / ViT setting) and by running percentile 99.999 (its OPT setting). Then
# experiments/outliers/report.py rewrites doc/results_outliers.md from all
# runs present.
#
# Environment: LOWBIT (the program, default `lowbit`), LOWBIT_EXP_DIR (runs,
# default ~/.cache/lowbit/experiments), THREADS (default 1: on a shared
# machine one thread per run is fastest), STEPS (override the step count),
# REPORT (the page to write, default doc/results_outliers.md).
# Budget on 2 shared cores: about 35 minutes per model.
set -eu
MODEL=${1:?usage: run.sh vit|gpt|bert [SEED...]}
shift
SEEDS=${*:-0 1}
LOWBIT=${LOWBIT:-lowbit}
THREADS=${THREADS:-1}
OUT=${LOWBIT_EXP_DIR:-$HOME/.cache/lowbit/experiments}/outliers
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export OMP_NUM_THREADS=$THREADS
mkdir -p "$OUT"

case $MODEL in
vit)
    TRAIN="--model vit --data fashion-mnist --layers 6 --d-model 96 --heads 4 --d-ff 384
           --batch 64 --steps ${STEPS:-1400} --lr 2e-3 --warmup 100 --eval-limit 2000"
    CLIP="--clip-alpha 0.5" ;;
gpt)
    TRAIN="--model gpt --data text --layers 4 --d-model 128 --heads 4 --d-ff 512 --seq-len 64
           --batch 32 --steps ${STEPS:-700} --lr 1e-3 --warmup 50 --eval-limit 200"
    CLIP="--clip-alpha 2" ;;
bert)
    TRAIN="--model bert --data text --layers 4 --d-model 128 --heads 4 --d-ff 512 --seq-len 64
           --batch 32 --steps ${STEPS:-700} --lr 1e-3 --warmup 50 --eval-limit 200"
    CLIP="--clip-alpha 2" ;;
*)
    echo "usage: run.sh vit|gpt|bert [SEED...]" >&2
    exit 2 ;;
esac

for seed in $SEEDS; do
    for att in softmax clipped gated; do
        run=$OUT/$MODEL-$att-s$seed
        ckpt=$run/checkpoint.safetensors
        extra=""
        [ "$att" = clipped ] && extra=$CLIP
        if [ ! -f "$ckpt" ]; then
            echo "== train $MODEL $att seed $seed"
            # shellcheck disable=SC2086
            $LOWBIT train $TRAIN --attention $att $extra --seed "$seed" --eval-every 0 \
                --threads "$THREADS" --out "$run" --quiet > "$run.train.log" 2>&1
        fi
        echo "== stats / w8a8 $MODEL $att seed $seed"
        $LOWBIT stats --checkpoint "$ckpt" --limit 256 --threads "$THREADS" \
            --json "$run/stats.json" > "$run/stats.txt"
        rm -f "$run/ptq.jsonl"
        $LOWBIT ptq --checkpoint "$ckpt" --method w8a8 --calib 16 --batch 16 \
            --threads "$THREADS" --out "$run/w8a8.safetensors" --eval \
            --json "$run/ptq.jsonl" > "$run/w8a8.txt"
        $LOWBIT ptq --checkpoint "$ckpt" --method w8a8 --act-range percentile \
            --calib 16 --batch 16 --threads "$THREADS" --out "$run/w8a8p.safetensors" --eval \
            --json "$run/ptq.jsonl" > "$run/w8a8p.txt"
    done
done
REPORT=${REPORT:-$SRC/doc/results_outliers.md}
/usr/bin/python3 "$SRC/experiments/outliers/report.py" "$OUT" "$REPORT"
echo "wrote $REPORT"
