# edge-ser: every target creates or reuses the virtual environment itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
CLI    := $(VENV)/bin/edge-ser
SHARED_DATA := $(abspath ../shared/data)
SER_DATA ?= $(if $(wildcard $(SHARED_DATA)/ravdess),$(SHARED_DATA)/ravdess,)
DATA   ?=
CORPUS ?= auto
ARGS   ?=
SYSTEM_PACKAGES := portaudio19-dev espeak-ng sox libsndfile1 pulseaudio alsa-utils libasound2-plugins

.PHONY: help venv sysdeps test test-slow train quantize compare tflite-runtime-env demo clean

help:
	@echo "make demo                 train + evaluate on a small slice of SER_DATA (default ../shared/data/ravdess)"
	@echo "make test                 the test suite (fast; real-data tests skip without ../shared/data)"
	@echo "make test-slow            real-data training tests (minutes)"
	@echo "make train DATA=path [CORPUS=ravdess] [ARGS='--epochs 30']"
	@echo "make quantize [RUN=runs/latest] [MODE=dynamic]   TFLite + drift gate (exit 3 on drift)"
	@echo "make compare [RUN=runs/latest]                    float vs every TFLite mode"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory sysdeps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q -e '.[train,edge,dev]'
	# legacy Keras 2, only for exporting the fused TFLite LSTM; its metadata would pull full tensorflow
	$(PIP) install -q --no-deps 'tf-keras==2.21.*'
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

test: venv tflite-runtime-env
	$(PY) -m pytest -q

test-slow: venv
	$(PY) -m pytest -q -m slow || [ $$? -eq 5 ]  # 5 = none collected

train: venv
	@if [ -z "$(DATA)" ]; then echo "usage: make train DATA=/path/to/corpus [CORPUS=ravdess] [ARGS='...']"; exit 2; fi
	$(CLI) train $(DATA) --corpus $(CORPUS) $(ARGS)

RUN  ?= runs/latest
MODE ?= dynamic
quantize: venv
	$(CLI) quantize $(RUN) --mode $(MODE) $(ARGS)

compare: venv tflite-runtime-env
	$(CLI) compare $(RUN) $(ARGS)

# tflite-runtime 2.14 (the last release, Python <= 3.11) needs numpy<2: it lives in its own venv.
tflite-runtime-env: .venv-tflite-runtime/.installed
.venv-tflite-runtime/.installed:
	$(PYTHON) -m venv .venv-tflite-runtime
	.venv-tflite-runtime/bin/pip install -q 'tflite-runtime==2.14.*' 'numpy<2' || \
	  echo "tflite-runtime cannot be installed for this Python: compare will say 'not tested'"
	touch $@

demo: venv
	@if [ -z "$(SER_DATA)" ] || [ ! -d "$(SER_DATA)" ]; then \
	  echo "make demo needs a corpus: set SER_DATA=/path/to/ravdess (e.g. the RAVDESS speech download)"; exit 1; fi
	$(CLI) train $(SER_DATA) --limit 240 --epochs 8 --name demo
	@echo "report: runs/demo/report.md"

clean:
	rm -rf $(VENV) runs .pytest_cache
