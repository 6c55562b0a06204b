# The two commands of a fresh machine: `make demo` and `make test`. Every target installs uv if
# absent (scripts/ensure-uv says where, and how to put it on PATH). `make help` lists them.
UV := $(shell scripts/ensure-uv)
# `uv sync` builds the compiled decode core (native/) with Rust's cargo: rustup's when the shell
# does not list ~/.cargo/bin; without any cargo, uv leaves the core out (UV_NO_GROUP=native) and
# the sensors worker decodes with fastavro (scripts/test fails instead under CI).
export PATH := $(if $(wildcard $(HOME)/.cargo/bin/cargo),$(HOME)/.cargo/bin:)$(PATH)
ifeq ($(shell PATH="$(PATH)" command -v cargo 2>/dev/null),)
export UV_NO_GROUP := native
$(info cargo not found: the compiled decode core (native/) is left out, the sensors worker decodes with fastavro)
endif
# The real stack's endpoints (scripts/stack env), for the targets that talk to it.
STACK_ENV = eval "$$(scripts/stack env)"

RATE ?= 100
SEED ?= 42
SENSORS ?= 100
COUNT ?=

.PHONY: help demo test setup producer consumer coverage unit lint stack-up stack-down bench fault-tests

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

demo:  ## the embedded pipeline: generator + worker + API + dashboard, no services (Ctrl-C stops)
	$(UV) sync --frozen
	$(UV) run --frozen pipeline demo $(ARGS)

test:  ## start the real stack and run every check and test (what CI runs)
	scripts/test

setup:  ## locked dependencies, the real stack started, the database migrated, the topics created
	$(UV) sync --frozen
	scripts/stack up
	$(STACK_ENV) && $(UV) run --frozen pipeline db upgrade && $(UV) run --frozen pipeline topics create

producer:  ## generated sensor readings into the stack's Kafka (RATE=100 COUNT=∞ SEED=42 SENSORS=100)
	$(STACK_ENV) && $(UV) run --frozen pipeline produce sensors --rate $(RATE) --seed $(SEED) \
		--sensors $(SENSORS) $(if $(COUNT),--count $(COUNT))

consumer:  ## the sensors worker: Kafka → PostgreSQL (Ctrl-C stops)
	$(STACK_ENV) && $(UV) run --frozen pipeline-worker sensors --metrics-port 9400

coverage:  ## `make test` with line coverage of src/pipeline; prints the total
	scripts/test --cov --cov-report=term:skip-covered

unit:  ## unit and in-memory contract tests only (no services)
	$(UV) sync --frozen
	$(UV) run --frozen pytest tests/unit tests/contract -m "not integration"

lint:  ## ruff, mypy --strict and the layering contract
	$(UV) run --frozen ruff check src tests migrations benchmarks
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports

stack-up:  ## start Kafka, PostgreSQL and the schema registry as local processes
	scripts/stack up

stack-down:  ## stop them (and the tests' production-shape stack, scripts/cluster-stack)
	scripts/stack down
	scripts/cluster-stack down

fault-tests:  ## the slow fault and scaling tests on the three-broker stack, scripts/cluster-stack (prints recovery times)
	$(UV) sync --frozen
	scripts/cluster-stack up
	eval "$$(scripts/cluster-stack env)" && $(UV) run --frozen pytest -m slow -s -p no:randomly

bench:  ## pipeline bench sensors on the real stack (EVENTS=200000 BENCH_RATE=0)
	scripts/stack up
	$(STACK_ENV) && $(UV) run --frozen pipeline bench sensors --events $${EVENTS:-200000} --rate $${BENCH_RATE:-0}
