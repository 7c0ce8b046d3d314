# sqlml: two commands do all the set-up.
#   make demo   builds .venv and runs the end-to-end tour (leaves sqlml_demo.db)
#   make test   builds .venv, lints, type-checks and runs the test suite
#   make docs   builds the manual in docs/ as a static site in site/ (offline)
# They install the project with its test and demo extras (see docs/install.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch, installed before sqlml so that sqlml's unpinned torch>=2.4 finds it there. From
# PyPI on Linux this pin is a CUDA build; for the CPU wheel add
#   TORCH_INDEX=https://download.pytorch.org/whl/cpu   (see docs/install.md)
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test test-all lint docs bench install-sql clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# the pinned torch first: an unpinned torch pulls a multi-GB CUDA build
	$(PIP) install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH)'
	$(PIP) install -q -e '.[test,demo]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/sqlml demo --db sqlml_demo.db

# ruff (lint, import order) and mypy (the core and sqlml.models), as pyproject.toml sets them
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check sqlml udfs tests bench
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q

test-all: lint
	SQLML_FUZZ=all $(PY) -m pytest -q -m 'not gpu'

docs: $(VENV)/.installed
	$(PIP) install -q -e '.[docs]'
	$(PY) -m mkdocs build --strict

install-sql: $(VENV)/.installed
	$(PY) -c "from sqlml.resources import install_sql_text; open('sql/install.sql', 'w').write(install_sql_text())"

clean:
	rm -rf $(VENV) build dist site *.egg-info sqlml_demo.db sqlml_demo_out
