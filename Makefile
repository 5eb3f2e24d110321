# The network's commands. A newcomer needs two: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: install run test seed up down logs clean bench

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed  ## the project's virtualenv with the pinned packages

run: install  ## the whole network in the foreground (Ctrl-C stops it)
	./bin/run

test: install  ## the whole suite, against the real RabbitMQ and PostgreSQL
	$(PY) -m pytest

seed: install  ## a demonstration directory, and two agency keys to try the API with
	$(PY) -m services.agencies.seed

$(VENV)/.installed-bench: $(VENV)/.installed requirements-bench.txt
	$(VENV)/bin/pip install --quiet -r requirements-bench.txt
	touch $@

bench: $(VENV)/.installed-bench  ## the network and two baselines under load: docs/benchmarks.md
	$(PY) -m bench.run

up:  ## the same network under docker compose, in the background
	$(COMPOSE) up --build --detach

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs --follow

clean:
	rm -rf $(VENV) .pytest_cache
