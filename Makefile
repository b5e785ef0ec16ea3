# Two commands a new user needs:  `make campaign` (the default exp3 campaign) and `make test`.
# Both install what they need first, into .venv, once.

VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
TARGET ?=

.PHONY: install campaign test lint dag benchmark clean

install: $(VENV)/.installed

# torch is installed first and pinned: on a CPU machine pip then takes the local CPU build
# instead of several GB of CUDA wheels.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

campaign: install
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --cores $(CORES) $(TARGET)

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .
	$(BIN)/ruff check
	$(BIN)/ruff format --check

dag: install
	@command -v dot >/dev/null || { echo "make dag needs graphviz's dot (apt install graphviz)"; exit 1; }
	$(BIN)/snakemake --rulegraph | dot -Tpng > docs/rulegraph.png.tmp
	mv docs/rulegraph.png.tmp docs/rulegraph.png

benchmark: install
	$(BIN)/python benchmarks/exp3_campaign.py

clean:
	rm -rf results .snakemake
