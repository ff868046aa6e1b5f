#!/usr/bin/env bash
# Pack what bench/experiments/gpu_study.py needs on a GPU machine with no package index: the student's initial checkpoint
# (all-MiniLM-L6-v2, weights stored in fp16 to halve what travels; students load them in fp32), the BEIR folders
# of the test collections, a grid's training groups and BM25's top 100 on each collection's test queries, plus the
# orjson wheel for the machine's Python (3.12).
#
#   bench/experiments/gpu_bundle.sh out/grid out/gpu .gpu/bundle
# (out/grid from `make grid`; out/gpu/bm25.test.COLLECTION.trec from `rdistill retrieve --split test --k 100`.)
set -euo pipefail
GRID=${1:?grid folder}; RUNS=${2:?folder of bm25.test.COLLECTION.trec}; DEST=${3:?bundle folder}
DATA=${DATA:-../shared/data}; PY=${PY:-.venv/bin/python}
rm -rf "$DEST"; mkdir -p "$DEST"/{model,data,groups,bm25}
"$PY" - "$DEST/model" <<'EOF'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
from rdistill.models import resolve_model
src, dst = Path(resolve_model("all-MiniLM-L6-v2")), Path(sys.argv[1])
for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(src / f, dst / f)
weights = load_file(src / "model.safetensors")
save_file({k: v.half().contiguous() for k, v in weights.items()}, dst / "model.safetensors", metadata={"format": "pt"})
EOF
for c in scifact cranfield vaswani; do
  mkdir -p "$DEST/data/$c/qrels"
  cp "$DATA/$c/corpus.jsonl" "$DATA/$c/queries.jsonl" "$DEST/data/$c/"
  cp "$DATA/$c/qrels/test.tsv" "$DEST/data/$c/qrels/"
  cp "$RUNS/bm25.test.$c.trec" "$DEST/bm25/$c.trec"
done
find "$GRID/groups" -name '*.jsonl' -size +0 -exec cp {} "$DEST/groups/" \;
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$DEST/wheels" orjson
du -sh "$DEST"
