# redline: `make demo` runs the whole toolkit locally, `make test` runs every check.
# Both install what they need on a new Debian machine (a venv, and Debian packages via apt).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# apt needs root; use sudo when we are not root and sudo exists.
SUDO   := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
# Debian packages the tests run for real: promtool (prometheus), openssl (a test CA),
# node_exporter (the node exporter is compared with it), amtool (the Alertmanager example),
# docker-compose (validates deploy/compose; no Docker engine needed), redis and curl (the
# ambassador in front of Redis and of a TLS server), victoria-metrics and vmalert (the rules and
# dashboards in a central store over two clusters, tests/scale), h2load and nghttp (HTTP/2
# through the ambassador).
TEST_TOOLS := promtool:prometheus openssl:openssl prometheus-node-exporter:prometheus-node-exporter \
              amtool:prometheus-alertmanager docker-compose:docker-compose \
              redis-server:redis-server redis-benchmark:redis-tools curl:curl \
              victoria-metrics:victoria-metrics vmalert:victoria-metrics \
              h2load:nghttp2-client
# What the demo uses when it can have it: Prometheus and Alertmanager (it runs without them).
DEMO_TOOLS := prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager
# e.g. `make demo DEMO_ARGS="--duration 60 --rate 100"`
DEMO_ARGS ?=
# Tools neither Debian nor the dev extra provide, pinned, in .tools/bin: kubectl (renders
# deploy/kubernetes with its kustomize; see tools/fetch_kubectl.py) and checkov (its own venv:
# its pinned dependencies must not move the project's).
TOOLS_DIR := .tools
KUBECTL := $(TOOLS_DIR)/bin/kubectl
CHECKOV := $(TOOLS_DIR)/bin/checkov
CHECKOV_VERSION := 3.3.30
# The anchors the benchmarks run side by side, and a C compiler for benchmarks/openloop.c.
# nginx-light has no stream module: benchmarks/bench_tcp.py loads Debian's, a file, no command.
BENCH_TOOLS := nginx:nginx-light wrk:wrk mtail:mtail haproxy:haproxy redis-server:redis-server \
               redis-benchmark:redis-tools cc:gcc \
               /usr/lib/nginx/modules/ngx_stream_module.so:libnginx-mod-stream

.PHONY: demo test install lint typecheck pytest system-tools bench-tools install-missing bench \
        clean

# Debian's packages first (apt may ask for a sudo password), then the rest of the install and
# the static checks side by side: the project's venv (pip and the mypyc compile, one core) and
# checkov's own venv (a minute of pip) depend on nothing of each other's, and ruff, mypy and
# the kubectl fetch start as soon as the venv is there. Then the tests, with nothing beside them.
test: system-tools
	@$(MAKE) --no-print-directory -j4 --output-sync=target lint typecheck $(KUBECTL) $(CHECKOV)
	@$(MAKE) --no-print-directory pytest

# The main job: the whole toolkit on this machine, no Docker, no cluster (Ctrl-C ends it).
demo: $(STAMP)
	@if command -v apt-get >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory install-missing TOOLS="$(DEMO_TOOLS)" || \
	  echo "could not install Prometheus: the demo reads the sidecars' /metrics instead"; \
	else echo "no apt-get here: the demo runs without Prometheus, reading the sidecars' /metrics"; fi
	$(BIN)/redline demo --log-format text $(DEMO_ARGS)

# The install builds the compiled modules in place (hatch_build.py: the C relay, and mypyc for
# redline/compiled.py's MYPYC_MODULES), so it reruns when what they are built from changes: an
# edited hot module is compiled again before the tests run (redline would run its source
# instead, warning that the build is stale). The last line says which build is installed.
COMPILED_SOURCES := $(shell $(PYTHON) tools/compile.py --list-sources)
install: $(STAMP)

$(STAMP): pyproject.toml hatch_build.py redline/sidecars/ambassador/_splice.c \
          redline/sidecars/adapter/_logscan.c redline/sidecars/ambassador/_h1head.c \
          tools/compile.py \
          redline/compiled.py $(COMPILED_SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@
	@$(BIN)/redline --version
	@echo "redline is installed in $(VENV); to run it yourself: . $(VENV)/bin/activate"

# Each entry is command:package, or /file:package for what a package ships that is no command
# (nginx's stream module); the package is installed only when the command or file is missing.
system-tools:
	@$(MAKE) --no-print-directory install-missing TOOLS="$(TEST_TOOLS)"

bench-tools:
	@$(MAKE) --no-print-directory install-missing TOOLS="$(BENCH_TOOLS)"

install-missing:
	@missing=""; for t in $(TOOLS); do needed=$${t%%:*}; \
	  case $$needed in /*) test -e $$needed;; *) command -v $$needed >/dev/null 2>&1;; esac || \
	  missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(KUBECTL): tools/fetch_kubectl.py | $(STAMP)
	$(BIN)/python tools/fetch_kubectl.py $(TOOLS_DIR)/bin

$(CHECKOV):
	test -x $(TOOLS_DIR)/checkov/bin/python || $(PYTHON) -m venv $(TOOLS_DIR)/checkov
	$(TOOLS_DIR)/checkov/bin/python -m pip install -q checkov==$(CHECKOV_VERSION)
	mkdir -p $(TOOLS_DIR)/bin && ln -sf ../checkov/bin/checkov $@

lint: $(STAMP)
	$(BIN)/ruff check redline tests benchmarks tools

typecheck: $(STAMP)
	$(BIN)/mypy --strict redline tests

# The venv's bin and .tools/bin on PATH: tools from PyPI (hadolint, checkov, kubectl) are
# found like system ones. Bytecode is cached even where the environment turns it off: the suite
# starts hundreds of `python -m redline.cli` processes, each compiling what it imports otherwise.
PYTEST := PATH="$(CURDIR)/$(TOOLS_DIR)/bin:$(CURDIR)/$(BIN):$$PATH" PYTHONDONTWRITEBYTECODE= \
          $(BIN)/python -m pytest -q
# Most tests wait on processes and sockets, so more workers than cores stay busy. --dist loadfile:
# a module's fixtures that start processes for all its tests (a Prometheus, a stack) start once,
# and the largest modules go first. (xdist_group/loadgroup would be finer, but pytest 9 ignores
# the node ids xdist 3.8 rewrites for it.) Tests marked `timing` (tests/conftest.py) assert
# latency bounds: they run afterwards, alone, and also when the parallel run failed (one report
# of every failure); the target fails if any phase did.
# The whole suite runs on the compiled build, which tests/compiled checks was built
# (REDLINE_EXPECT_COMPILED: the build hook falls back to pure Python rather than fail).
# Then the tests of the compiled modules' behaviour again on the pure build (REDLINE_PURE=1: the
# fallback must behave the same): those of the exporters, the adapter's pipeline and the
# ambassador's HTTP/1 path and handlers, which run every module of MYPYC_MODULES (not the whole
# ambassador and adapter suites: they take longer than `make test`'s 10-minute budget leaves,
# and the rest of them tests processes, files and protocols the compiled code does not touch).
# The million-path cap test is left out: it takes two minutes in pure Python.
PYTEST_WORKERS ?= 4
PURE_TESTS := $(addprefix tests/exporters/test_,instruments.py red.py red_last_series.py routes.py rpc.py tcp.py \
                textformat.py) \
              $(addprefix tests/sidecars/adapter/test_,pipeline.py golden.py mapping.py once.py) \
              $(addprefix tests/sidecars/ambassador/test_,http1.py connection_pair.py \
                error_types.py failures.py h1head_end.py passthrough.py listener.py keepalive_race.py) \
              --deselect tests/exporters/test_routes.py::test_a_million_distinct_paths_stay_within_the_cap
pytest: $(STAMP) system-tools $(KUBECTL) $(CHECKOV)
	REDLINE_EXPECT_COMPILED=1 $(PYTEST) -n $(PYTEST_WORKERS) --dist loadfile -m "not timing"; \
	parallel=$$?; \
	$(PYTEST) -m timing; timing=$$?; \
	REDLINE_PURE=1 $(PYTEST) -n $(PYTEST_WORKERS) --dist loadfile -m "not timing" $(PURE_TESTS); \
	pure=$$?; [ $$parallel = 0 ] && [ $$timing = 0 ] && exit $$pure; exit 1

bench: $(STAMP) bench-tools
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_hot_path.py
	$(BIN)/python benchmarks/bench_proxy_python.py
	$(BIN)/python benchmarks/bench_ambassador.py
	$(BIN)/python benchmarks/bench_adapter.py

clean:
	$(PYTHON) tools/compile.py --clean >/dev/null
	rm -rf $(VENV) $(TOOLS_DIR) .mypy_cache .ruff_cache .pytest_cache .hypothesis
