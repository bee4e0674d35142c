# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
RUN_STAMP  := $(VENV)/.run-$(shell cat requirements.txt | sha256sum | cut -c1-16)
TEST_STAMP := $(VENV)/.test-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)

.PHONY: run test lint install install-dev migrate bench clean messages

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Tanhui needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.run-* && touch $@

$(TEST_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.test-* && touch $@

install: $(RUN_STAMP)
install-dev: $(TEST_STAMP)

migrate: install
	$(PY) manage.py migrate --no-input

run: migrate
	$(PY) manage.py ensure_local_admin
	@if $(PY) manage.py help load_demo >/dev/null 2>&1; then $(PY) manage.py load_demo; fi
	@echo "Tanhui on http://$(HOST):$(PORT)/  API docs: http://$(HOST):$(PORT)/api/docs/  health: http://$(HOST):$(PORT)/healthz"
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Page translations: the compiled locale/*/LC_MESSAGES/django.mo is committed, so run and test need no gettext;
# after changing page text, this (which needs GNU gettext) re-extracts the strings and recompiles.
messages: install
	$(PY) manage.py makemessages -l zh_Hans --no-location --ignore='.venv/*' --ignore='var/*' --ignore='tests/*' \
	  --ignore='bench/*'
	$(PY) manage.py compilemessages -l zh_Hans

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
