# sqlml: two commands do all the set-up.
#   make demo   builds .venv and runs the end-to-end tour (leaves sqlml_demo.db)
#   make test   builds .venv and runs the test suite
#   make docs   builds the manual in docs/ as a static site in site/ (offline)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test test-all docs bench install-sql clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# the pinned CPU wheel first: an unpinned torch pulls a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/sqlml demo --db sqlml_demo.db

test: $(VENV)/.installed
	$(PY) -m pytest -q

test-all: $(VENV)/.installed
	SQLML_FUZZ=all $(PY) -m pytest -q -m 'not gpu'

docs: $(VENV)/.installed
	$(PIP) install -q -e '.[docs]'
	$(PY) -m mkdocs build --strict

install-sql: $(VENV)/.installed
	$(PY) -c "from sqlml.resources import install_sql_text; open('sql/install.sql', 'w').write(install_sql_text())"

clean:
	rm -rf $(VENV) build dist site *.egg-info sqlml_demo.db sqlml_demo_out
