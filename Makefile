# One virtual environment in .venv; every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama.cpp builds from source here; portable flags keep the wheel usable on any x86-64.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
SCENARIO ?= scenarios/valentines.yaml
UNTIL ?= 2023-02-13T09:00

.PHONY: setup setup-dev setup-browser run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install -q -e ".[embedded]"

setup-dev: $(BIN)/python
	$(BIN)/pip install -q -e ".[embedded,dev]"

# Debian's chromium for the replay page's browser tests (playwright drives it; nothing is downloaded by playwright).
setup-browser: setup-dev
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q chromium chromium-driver

run: setup
	$(BIN)/simulacra run $(SCENARIO) --until $(UNTIL)

test: setup-dev
	$(BIN)/python -m pytest -q

# Every benchmark, its JSON kept in docs/bench-results/ and its table written into docs/benchmarks.md
# (BENCH=population,sweep runs some; the embedded ones take most of the time).
bench: setup-dev
	$(BIN)/python benchmarks/suite.py $(if $(BENCH),--only $(BENCH))

clean:
	rm -rf $(VENV) runs .pytest_cache
