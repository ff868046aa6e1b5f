"""First-stage retrieval: BM25 (bm25.py) and dense bi-encoder search (dense.py) over on-disk indexes."""
