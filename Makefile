# freqkit: common commands.  `make help` lists them.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= cpu
OUT     ?= _build
# empty when root, else sudo (for apt-get)
SUDO    := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: help install venv browser test test-fast book chapter clean vendor bench bench-quick device-pack

help:
	@echo "make install           venv + requirements-dev + torchattacks (--no-deps) + freqkit (editable) + chromium (apt) + widget JS (npm, checksummed)"
	@echo "make test              the whole test suite (unit, notebooks under the smoke profile, browser)"
	@echo "make test-fast         the tests not marked slow"
	@echo "make book PROFILE=cpu  execute every chapter with papermill, then build the HTML book into $(OUT)/html"
	@echo "make chapter CH=02 PROFILE=smoke   execute one chapter (no build)"
	@echo "make bench             every benchmark (CPU, a few minutes), table into README.md"
	@echo "make bench-quick       fewer sizes and repeats (about a minute)"
	@echo "make device-pack       wheels + CIFAR-10 subset in .device/ for benchmarks/gpu/run_device.sh"
	@echo "make clean             remove $(OUT)/ and caches (keeps the venv and the model cache)"

install: venv browser vendor

venv:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements-dev.txt
	$(PY) -m pip install --no-deps torchattacks==3.5.1
	$(PY) -m pip install --no-deps -e .

browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	else $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium fonts-dejavu-core fonts-liberation; fi

test:
	$(PY) -m pytest -q

test-fast:
	$(PY) -m pytest -q -m "not slow"

book:
	$(PY) -m freqkit.book --profile $(PROFILE) --out $(OUT)

bench:
	$(PY) benchmarks/run_all.py --readme

bench-quick:
	$(PY) benchmarks/run_all.py --quick

device-pack:
	$(PY) benchmarks/gpu/pack.py

chapter:
	$(PY) -m freqkit.book --profile $(PROFILE) --out $(OUT) --chapters $(CH) --no-build

vendor:
	bash book/_vendor/fetch.sh

clean:
	rm -rf $(OUT) .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
