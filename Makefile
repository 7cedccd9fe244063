# The two commands a newcomer needs are `make serve` and `make test`.
# Each creates .venv from pyproject.toml with the exact versions in constraints.txt. pip installs
# uv (pinned there too), and uv installs the rest: a fresh .venv in seconds rather than half a
# minute, from the same versions.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt

.PHONY: serve test bench lint typecheck check safety-case clean

# The venv gets no pip of its own (three seconds of a fresh `make test`): the interpreter's pip
# puts uv in it (`--python`), and only a Python without pip falls back to the venv's ensurepip.
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check \
		-c constraints.txt uv 2>/dev/null \
	|| { $(BIN)/python -m ensurepip --default-pip >/dev/null \
		&& $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv; }

# Stamps re-run the install whenever the dependency files change.
$(VENV)/.base: pyproject.toml constraints.txt | $(BIN)/uv
	$(PIP) -e .
	@touch $@

$(VENV)/.test: pyproject.toml constraints.txt | $(BIN)/uv
	$(PIP) -e '.[test]'
	@touch $(VENV)/.base $@

# A machine may forbid bytecode caches (PYTHONDONTWRITEBYTECODE): the test run starts hundreds of
# Python processes (workers, served services, probes), and each would compile again every module
# it imports. The caches go to __pycache__ folders, which git ignores.
test safety-case bench: export PYTHONDONTWRITEBYTECODE =

serve: $(VENV)/.base
	$(BIN)/iris-prompt serve --local

# Two workers, each handed a whole module at a time (`--dist loadfile`): a module's processes (a
# served service, a browser, the SMART launcher) start once, not once in each worker that runs
# some of its tests. They are handed out in collection order (`--no-loadscope-reorder`; xdist
# would otherwise put the modules with most tests first), where the modules marked `slow` come
# first (tests/conftest.py), so the quick ones fill the gaps at the end and the workers finish
# together.
test: $(VENV)/.test
	scripts/ensure-chromium
	scripts/ensure-postgresql
	scripts/ensure-redis
	$(BIN)/ruff check .
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -n 2 --dist loadfile --no-loadscope-reorder
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

# Runs every test the hazard log (docs/safety/hazard-log.toml) names and writes the safety case
# report, build/safety-case.md, saying which controls ran green; fails unless all of them did.
safety-case: $(VENV)/.test
	scripts/ensure-chromium
	scripts/ensure-postgresql
	scripts/ensure-redis
	$(BIN)/python -m iris_prompt.safety

bench: $(VENV)/.test
	$(BIN)/python -m benchmarks

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
