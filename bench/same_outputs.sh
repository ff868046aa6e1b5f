#!/usr/bin/env bash
# Run the demo's stages on a slice of scifact and leave every output in OUTDIR, so that two checkouts' outputs can
# be compared byte for byte (`cmp`): the proof that a refactor changed no behaviour.
#   bench/same_outputs.sh /tmp/before            # on the old code
#   bench/same_outputs.sh /tmp/after             # on the new code
#   for f in /tmp/before/*; do cmp "$f" /tmp/after/$(basename "$f"); done
# Slice: the first NQ (default 40) training queries of DATA/scifact with their qrels, the whole corpus; the teacher
# is the real all-MiniLM-L6-v2 (bi-encoder, only each chunk's documents embedded).
set -euo pipefail
OUT=${1:?usage: bench/same_outputs.sh OUTDIR}
DATA=${DATA:-../shared/data}
NQ=${NQ:-40}
RD=${RD:-.venv/bin/rdistill}
D=$DATA/scifact
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The slice: NQ training queries (JSONL) and their qrels (TREC).
tail -n +2 "$D/qrels/train.tsv" | awk -v n="$NQ" '!($1 in seen) {seen[$1]; c++} c <= n {print $1, 0, $2, $3}' \
  > "$WORK/qrels.txt"
awk '{print $1}' "$WORK/qrels.txt" | sort -u > "$WORK/qids"
.venv/bin/python - "$D/queries.jsonl" "$WORK/qids" > "$WORK/queries.jsonl" <<'PY'
import json, sys
keep = set(open(sys.argv[2]).read().split())
for line in open(sys.argv[1]):
    if json.loads(line)["_id"] in keep:
        sys.stdout.write(line)
PY
Q=$WORK/queries.jsonl; QR=$WORK/qrels.txt
$RD retrieve --corpus "$D" --queries "$Q" --k 30 --index "$WORK/index" -o "$OUT/bm25.trec"
$RD retrieve --corpus "$D" --queries "$Q" --k 30 --index "$WORK/index" > "$OUT/bm25.stdout.trec"
$RD score-teacher --model all-MiniLM-L6-v2 --doc-embeddings run --queries "$Q" --corpus "$D" --qrels "$QR" \
  -o "$OUT/teacher.trec" < "$OUT/bm25.trec"
$RD entropy --temperature 0.05 --k 20 < "$OUT/teacher.trec" > "$OUT/entropy.jsonl"
$RD entropy --definition pairwise "$OUT/teacher.trec" > "$OUT/entropy.pairwise.jsonl"
S="--qrels $QR --group-size 4 --seed 42"
$RD sample --strategy window --window 1:20 --scores "$OUT/teacher.trec" $S < "$OUT/bm25.trec" > "$OUT/g.window.jsonl"
$RD sample --strategy teacher --window 1:20 $S < "$OUT/teacher.trec" > "$OUT/g.teacher.jsonl"
$RD sample --strategy teacher --window 1:20 --one-per-query $S -o "$OUT/g.teacher1.jsonl" < "$OUT/teacher.trec"
$RD sample --strategy random --corpus "$D" --no-scores $S > "$OUT/g.random.jsonl"
$RD sample --strategy random --corpus "$D" --emit-candidates --no-scores $S > "$OUT/c.random.trec"
$RD sample --strategy ensemble --corpus "$D" --emit-candidates --no-scores $S "$OUT/bm25.trec" "$OUT/teacher.trec" \
  > "$OUT/c.ensemble.trec"
$RD score-teacher --model all-MiniLM-L6-v2 --doc-embeddings run --queries "$Q" --corpus "$D" \
  -o "$OUT/c.ensemble.teacher.trec" < "$OUT/c.ensemble.trec"
$RD sample --strategy ensemble --corpus "$D" --scores "$OUT/c.ensemble.teacher.trec" $S "$OUT/bm25.trec" \
  "$OUT/teacher.trec" > "$OUT/g.ensemble.jsonl"
$RD sample --strategy ensemble --no-filter --corpus "$D" --scores "$OUT/c.ensemble.teacher.trec" $S \
  "$OUT/bm25.trec" "$OUT/teacher.trec" > "$OUT/g.ensemble-nofilter.jsonl"
$RD entropy --temperature 0.05 --keep below-median --entropy-out "$OUT/cut.entropy.jsonl" \
  < "$OUT/g.window.jsonl" > "$OUT/g.window~below-median.jsonl"
$RD entropy --temperature 0.05 --keep inner "$OUT/teacher.trec" > "$OUT/teacher~inner.trec"
$RD locality --model all-MiniLM-L6-v2 --corpus "$D" --coverage-against "$OUT/bm25.trec" --test-k 10 \
  --summary "$OUT/locality.summary.jsonl" "$OUT/g.window.jsonl" "$OUT/g.random.jsonl" > "$OUT/locality.jsonl"
$RD locality --corpus "$D" --coverage-against "$OUT/bm25.trec" --k 10 "$OUT/teacher.trec" \
  2> "$OUT/locality.coverage.stderr"
$RD convert --to authors --scores-out "$OUT/authors.scores.json" "$OUT/g.window.jsonl" > "$OUT/authors.jsonl"
$RD convert --from authors --scores-json "$OUT/authors.scores.json" "$OUT/authors.jsonl" > "$OUT/authors.back.jsonl"
$RD convert --to tevatron --queries "$Q" --corpus "$D" "$OUT/g.window.jsonl" > "$OUT/tevatron.jsonl"
$RD convert --to flagembedding --queries "$Q" --corpus "$D" --prompt "q: " "$OUT/g.teacher.jsonl" > "$OUT/flag.jsonl"
$RD eval --qrels "$QR" "$OUT/bm25.trec" "$OUT/teacher.trec" > "$OUT/eval.txt"
rm -f "$OUT"/*.meta.json.tmp*
echo "outputs in $OUT" >&2
