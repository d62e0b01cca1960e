# Two commands: `make demo` and `make test`. Both create .venv and install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
LOCAL_STAMP := $(VENV)/.installed-local
DEMO := demo_out
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF

.PHONY: install install-local demo test lint bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first, pinned: the CPU wheel lies on local disk; an open range pulls a CUDA build.
# The scale extra (Ray) too, so that `make test` (and CI) runs the distributed-run tests.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[dev,train,scale]"
	touch $@

install: $(STAMP)

# llama-cpp-python builds from source (~4 min); a native build crashes on some CPUs.
$(LOCAL_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) install --quiet -e ".[local]"
	touch $@

install-local: $(LOCAL_STAMP)

demo: $(LOCAL_STAMP)
	$(VENV)/bin/clinsynth ingest clinsynth/data/demo_corpus --store $(DEMO)/store --reset
	CLINSYNTH_MAX_TOKENS=384 $(VENV)/bin/clinsynth generate --recipe qa -n 2 --max-candidates 8 --max-attempts 2 \
		--concurrency 1 --store $(DEMO)/store --out $(DEMO)/run --overwrite
	$(VENV)/bin/clinsynth inspect $(DEMO)/run

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -m "not live" -q

lint: $(STAMP)
	$(VENV)/bin/ruff check clinsynth tests bench
	$(VENV)/bin/ruff format --check clinsynth tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) bench/core_overhead.py

clean:
	rm -rf $(DEMO) .pytest_cache .mypy_cache .ruff_cache
