# cnfs_geo — two commands: `make demo` (Maine-et-Loire plan) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# National raw files for the tests that go beyond the embedded 49 bundle: used when a
# sibling ../shared/data/raw exists (as in CI) unless CNFS_GEO_DATA_DIR is already set.
RAW    ?= $(wildcard ../shared/data/raw)
export CNFS_GEO_DATA_DIR ?= $(if $(RAW),$(abspath $(RAW)),)

.PHONY: demo test test-fast lint install install-test data clean lab notebooks wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	env -u CNFS_GEO_DATA_DIR $(BIN)/cnfs-geo plan --departement 49 --posts 8 --threshold 10 --out maps/49
	env -u CNFS_GEO_DATA_DIR $(BIN)/cnfs-geo plan --departement 49 --posts 6 --itinerant 2 --threshold 10 --out maps/49_mutualise
	env -u CNFS_GEO_DATA_DIR $(BIN)/cnfs-geo compare --departement 49 --threshold 10 --out maps/49/comparaison
	@echo "Outputs in maps/49/ (8 fixed posts) and maps/49_mutualise/ (6 fixed + 2 itinerant posts):"
	@echo "  plan.gpkg (QGIS), carte_couverture.html (map), rapport.html (report); maps/49/comparaison/ (posts sweep)"

# The whole suite, then the package's doctests (numpydoc Examples, on the embedded 49 data:
# without CNFS_GEO_DATA_DIR, which would point them at the national files).
test: install-test
	$(BIN)/python -m pytest -q tests
	env -u CNFS_GEO_DATA_DIR $(BIN)/python -m pytest -q --doctest-modules cnfs_geo

# Without the national-data and notebook tests: 73-83 s against 240-277 s for `make test`'s
# suite (28-31 %, 29 % on average over five alternating pairs, 2-core development machine,
# 2026-12-01).
test-fast: install-test
	$(BIN)/python -m pytest -q -m "not national and not notebooks" tests

# Lint, format check and type check, as in CI.
lint: install-test
	$(BIN)/ruff check cnfs_geo tests benchmarks
	$(BIN)/ruff format --check cnfs_geo tests benchmarks
	$(BIN)/mypy cnfs_geo

# JupyterLab on the notebooks (installs the `lab` extra on first use).
$(VENV)/.installed-lab: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	touch $@

lab: $(VENV)/.installed-lab
	env -u CNFS_GEO_DATA_DIR $(BIN)/jupyter lab notebooks

# Execute the notebooks in place and store them with their outputs (deterministic:
# embedded data, volatile metadata stripped).
notebooks: install-test
	$(BIN)/python notebooks/execute.py

# The wheel (with the embedded 49 bundle) in dist/.
wheel: $(BIN)/python
	$(BIN)/python -m pip wheel --quiet --no-deps . -w dist

# Rebuild the embedded 49 bundle from the raw national files: make data RAW=../shared/data/raw
data: install
	$(BIN)/python -m cnfs_geo.build_data $(RAW)

clean:
	rm -rf $(VENV) .pytest_cache
