# Two entry points: `make demo` and `make test`. Each sets up what it needs (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup espeak test demo lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned in the install step: a looser spec pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

espeak:
	@if ! command -v espeak-ng >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing espeak-ng with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng) >/dev/null; \
	  else \
	    echo "espeak-ng is missing: install it (e.g. 'sudo apt-get install espeak-ng')"; exit 1; \
	  fi; \
	fi

setup: $(STAMP) espeak

test: setup
	$(VENV)/bin/ruff check src tests bench hubconf.py
	$(PY) -m pytest -p no:cacheprovider tests

demo: setup
	$(VENV)/bin/speechrep demo --out demo_out

lint: setup
	$(VENV)/bin/ruff check src tests bench hubconf.py

clean:
	rm -rf $(VENV) demo_out
