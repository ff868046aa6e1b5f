#!/usr/bin/env bash
# The samplers, losses and label-free modes of issues 24 and 28, one seed each, on the demo's default student
# (all-MiniLM-L6-v2, frozen documents, 200 steps of 16 queries, lr 5e-5, teacher x 5), next to the demo's
# BM25-window KL student. Reuses `make demo`'s outputs (DEMO, default out/demo: BM25 runs, the fused teacher's
# scores, the index, the demo's students and runs); writes groups, students and scifact test runs under OUT, and
# prints one eval table (paired t-tests against BM25, Holm-corrected) and, per label-free student, a two-run table
# against the judged student (t-test and TOST at delta 0.01).
#   make demo && bench/experiments/variants.sh
# Each student is one `rdistill train`; an existing student folder is reused, so an interrupted run goes on.
set -euo pipefail
D=${D:-../shared/data/scifact}
DEMO=${DEMO:-out/demo}
OUT=${OUT:-out/variants}
RD=$(realpath "${RD:-.venv/bin/rdistill}")
DABS=$(realpath "$D")
mkdir -p "$OUT/groups" "$OUT/students" "$OUT/runs" "$OUT/teacher-parts"
S="--group-size 8 --seed 42"
TRAIN="--student bi --frozen-documents --model all-MiniLM-L6-v2 --max-doc-length 256 --teacher-scale 5 --group-size 8
  --batch-size 16 --grad-accum 1 --lr 5e-5 --max-steps 200 --seed 42 --queries $D --corpus $D"
T=$DEMO/teacher.train.trec
B=$DEMO/bm25.train.trec

# The label-free teacher: the same fused teacher over BM25's top 200 alone (no judged positive added to the pool).
NL=$OUT/teacher.nolabels.trec
if [ ! -s "$NL" ]; then
  $RD score-teacher --model bm25 --index "$DEMO/index/bm25" --queries "$D" --corpus "$D" -o "$OUT/teacher-parts/nl.bm25.trec" "$B"
  $RD score-teacher --model all-MiniLM-L6-v2 --queries "$D" --corpus "$D" -o "$OUT/teacher-parts/nl.model.trec" "$B"
  $RD fuse --weights 1,1 --tag fused -o "$NL" "$OUT/teacher-parts/nl.bm25.trec" "$OUT/teacher-parts/nl.model.trec"
fi

group() {  # group NAME ARGS...: the groups file OUT/groups/NAME.jsonl, made once
  local name=$1; shift
  [ -s "$OUT/groups/$name.jsonl" ] || "$@" -o "$OUT/groups/$name.jsonl"
}
group stratified $RD sample --strategy stratified --window 1:100 --scores "$T" --qrels "$D" --split train $S "$B"
group top $RD sample --strategy top --window 1:100 --scores "$T" --qrels "$D" --split train $S "$B"
group relmargin05 $RD sample --strategy window --window 1:100 --relative-margin 0.05 --scores "$T" --qrels "$D" --split train $S "$B"
group relmargin10 $RD sample --strategy window --window 1:100 --relative-margin 0.1 --scores "$T" --qrels "$D" --split train $S "$B"
group pseudo $RD sample --strategy window --window 1:100 --positives teacher:1 --scores "$NL" $S "$B"
group nopos $RD sample --strategy window --window 1:100 --positives none --scores "$NL" $S "$B"
group select-min $RD entropy --select greedy --objective min --size 8 -T 0.2 --k 100 "$NL"
group select-max $RD entropy --select greedy --objective max --size 8 -T 0.2 --k 100 "$NL"
group select-var $RD entropy --select max-variance --size 8 -T 0.2 --k 100 "$NL"

student() {  # student NAME GROUPS LOSS [ARGS...]: train once, then re-rank BM25's top 20 of scifact test
  local name=$1 groups=$2 loss=$3; shift 3
  [ -f "$OUT/students/$name/rdistill_train.json" ] ||
    $RD train $TRAIN --loss "$loss" "$@" --out "$OUT/students/$name" "$OUT/groups/$groups.jsonl"
  [ -s "$OUT/runs/$name.trec" ] ||
    $RD score-teacher --model "$OUT/students/$name" --queries "$D" --corpus "$D" -o "$OUT/runs/$name.trec" \
      "$DEMO/bm25.test.scifact.trec"
}
cp "$DEMO/groups/bm25.jsonl" "$OUT/groups/window.jsonl"
student stratified.kl stratified kl
student top.kl top kl
student relmargin05.kl relmargin05 kl
student relmargin10.kl relmargin10 kl
student window.listmle window listmle
student window.lambdaloss window lambdaloss
student window.kl-inbatch window kl --in-batch-negatives
student pseudo.kl pseudo kl
student nopos.kl nopos kl
student nopos.adrmse nopos adrmse
student select-min.kl select-min kl
student select-max.kl select-max kl
student select-var.kl select-var kl

JUDGED=$DEMO/runs/scifact/bm25.kl.s42.trec
cp "$DEMO/bm25.test.scifact.trec" "$OUT/runs/bm25.trec"
cp "$JUDGED" "$OUT/runs/window.kl.trec"
cd "$OUT/runs"
echo "## Every variant against BM25 (scifact test, BM25's top 20 re-ranked)"
$RD eval --qrels "$DABS" --split test -m ndcg@10,map --baseline bm25.trec bm25.trec \
  window.kl.trec stratified.kl.trec top.kl.trec relmargin05.kl.trec relmargin10.kl.trec window.listmle.trec \
  window.lambdaloss.trec window.kl-inbatch.trec pseudo.kl.trec nopos.kl.trec nopos.adrmse.trec select-min.kl.trec \
  select-max.kl.trec select-var.kl.trec
for free in pseudo.kl nopos.kl nopos.adrmse; do
  echo "## $free against the judged student (window.kl)"
  $RD eval --qrels "$DABS" --split test -m ndcg@10 --baseline window.kl.trec \
    window.kl.trec "$free.trec"
done
