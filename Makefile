# Every target sets itself up: .venv is made, and nbtorch installed into it with its development
# extras, when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: demo demo-text test lab docs export clean-nbs readme notebooks bench gpu-wheels

$(READY): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(READY)

demo: $(READY)
	$(BIN)/python tools/demo.py

# Sequence models, offline: an LSTM on the digits read row by row, then an LSTM and a Transformer
# learning the notebooks' prose (data/prose.txt); loss curves into demo_out/text; ends with
# `bits per character: X.XX`.
demo-text: $(READY)
	$(BIN)/python tools/demo_text.py demo_out/text

# The notebooks are the source: exporting and cleaning them must change nothing, README.md must be
# what nbs/index.ipynb renders to; then every notebook runs; where Chromium is installed the docs site
# is built for the browser test; then the test suite (its summary last).
test: $(READY)
	@$(BIN)/python tools/check_source.py
	$(BIN)/python tools/readme.py --check
	$(BIN)/nbdev-test --n-workers 2
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then $(BIN)/python docs/build.py; \
	 else echo "Chromium or chromedriver missing: the browser test of the docs site is skipped"; fi
	$(BIN)/python -m pytest -q tests

# The docs site, offline, into docs/_build/html (open docs/_build/html/index.html).
docs: $(READY)
	$(BIN)/python docs/build.py

# JupyterLab refuses to run as root unless told: a container's user often is root
# The kernelspec in tools/jupyter names the kernel as the notebooks store it (nbdev-clean writes its
# display name), so that opening a notebook does not mark it modified; as root, JupyterLab wants --allow-root.
lab: $(READY)
	JUPYTER_PATH=$(CURDIR)/tools/jupyter $(BIN)/jupyter lab nbs $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# For developers: export the package, clean the notebooks, store fresh outputs, write README.md.
export: $(READY)
	$(BIN)/nbdev-export
clean-nbs: $(READY)
	$(BIN)/nbdev-clean
notebooks: $(READY)
	$(BIN)/nbdev-export
	$(BIN)/nbdev-test --n-workers 2 --save
	$(BIN)/nbdev-clean
	$(BIN)/python tools/readme.py
readme: $(READY)
	$(BIN)/python tools/readme.py

bench: $(READY)  # BENCH_ARGS='--device cuda' runs the suite on a GPU (nbtorch on CuPy)
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

# For a session lent a GPU machine (it reaches no registry): the wheels it lacks, for its Python 3.12,
# into .whl/ (git-ignored), which tools/gpu_run.sh installs there. See tools/gpu_run.sh.
gpu-wheels:
	rm -rf .whl
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl -r tools/gpu_wheels.txt
