# freqkit: common commands.  `make help` lists them.
# The two that matter, both idempotent on a fresh clone: `make book` and `make test`.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= cpu
OUT     ?= _build
# chapters executed at once by `make book`: the cpu profile runs one per core (one thread each,
# two chapters that need the same model train it once); the others one at a time
JOBS    ?= $(if $(filter cpu,$(PROFILE)),$(shell nproc 2>/dev/null || echo 1),1)
# empty when root, else sudo (for apt-get)
SUDO    := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# the offline data beside the repository when present; else freqkit downloads into ~/.cache/freqkit/data
DATA    := $(shell [ -d ../shared/data ] && realpath ../shared/data)
RUNENV  := $(if $(FREQKIT_DATA),,$(if $(DATA),FREQKIT_DATA=$(DATA)))
# installed once per change of the requirement files (a stamp in the venv)
STAMP   := $(VENV)/.freqkit-installed

.PHONY: help install venv browser test test-fast book chapter clean vendor bench bench-quick device-pack wheel-check

help:
	@echo "make book PROFILE=cpu  install what is missing, execute every chapter (papermill; cpu: one per core, JOBS=N), build the HTML into $(OUT)/html"
	@echo "make test              install what is missing, run the whole test suite (unit, notebooks under smoke, browser)"
	@echo "make test-fast         the tests not marked slow"
	@echo "make install           venv + requirements-dev + freqkit (editable) + chromium (apt) + widget JS (npm, checksummed)"
	@echo "make chapter CH=02 PROFILE=smoke   execute one chapter (no build)"
	@echo "make wheel-check       build the wheel; in a venv with only the core dependencies, run the public contract"
	@echo "make bench             every benchmark (CPU, a few minutes), table into README.md"
	@echo "make bench-quick       fewer sizes and repeats (about a minute)"
	@echo "make device-pack       wheels + CIFAR-10 subset in .device/ for benchmarks/gpu/run_device.sh"
	@echo "make clean             remove $(OUT)/ and caches (keeps the venv and the model cache)"

install: $(STAMP) browser vendor

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements-dev.txt
	$(PY) -m pip install --no-deps torchattacks==3.5.1
	$(PY) -m pip install --no-deps -e .
	touch $@

browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	else $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium fonts-dejavu-core fonts-liberation; fi

vendor:
	bash book/_vendor/fetch.sh

book: install
	$(RUNENV) $(PY) -m freqkit.book --profile $(PROFILE) --out $(OUT) --jobs $(JOBS)

test: install
	$(RUNENV) $(PY) -m pytest -q

test-fast: install
	$(RUNENV) $(PY) -m pytest -q -m "not slow"

chapter: install
	$(RUNENV) $(PY) -m freqkit.book --profile $(PROFILE) --out $(OUT) --chapters $(CH) --no-build

wheel-check: $(STAMP)
	bash .ci/wheel_check.sh

bench: install
	$(PY) benchmarks/run_all.py --readme

bench-quick: install
	$(PY) benchmarks/run_all.py --quick

device-pack: install
	$(PY) benchmarks/gpu/pack.py

clean:
	rm -rf $(OUT) .pytest_cache .hypothesis dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
