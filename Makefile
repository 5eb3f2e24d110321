# The network's commands. A newcomer needs two: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: install lint format fast run test seed up down logs clean bench translations chaos

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed  ## the project's virtualenv with the pinned packages

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

lint: $(VENV)/.installed-dev  ## ruff's rules and its formatter (pyproject.toml); `make format` rewrites
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev  ## the formatter and ruff's safe fixes, applied
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

fast: install  ## the pure-rule tests, which need no server: seconds
	$(PY) -m pytest -q -m rules

$(VENV)/.installed-browser: bin/install-browser | $(VENV)/.installed
	VENV=$(VENV) ./bin/install-browser
	touch $@

run: install  ## the whole network in the foreground (Ctrl-C stops it)
	./bin/run

test: lint $(VENV)/.installed-browser  ## lint, then the whole suite, against the real RabbitMQ and PostgreSQL (two pytest lanes side by side)
	./bin/rabbitmq-management
	VENV=$(VENV) ./bin/test

seed: install  ## a demonstration directory, and two agency keys to try the API with
	$(PY) -m services.agencies.seed

PAGES := gateway/inbox
translations: install  ## after changing the pages' texts: new msgids into translations/{az,ru}.po, to translate
	$(VENV)/bin/pybabel extract -F $(PAGES)/babel.cfg -k N_ -k gettext -k ngettext:1,2 --no-location \
		--sort-output --project="Referral network" -o $(PAGES)/translations/messages.pot $(PAGES)
	for language in az ru; do $(VENV)/bin/pybabel update --no-fuzzy-matching \
		-i $(PAGES)/translations/messages.pot -o $(PAGES)/translations/$$language.po -l $$language; done

$(VENV)/.installed-bench: $(VENV)/.installed requirements-bench.txt
	$(VENV)/bin/pip install --quiet -r requirements-bench.txt
	touch $@

bench: $(VENV)/.installed-bench  ## the network and two baselines under load: docs/benchmarks.md
	./bin/rabbitmq-management
	$(PY) -m bench.run

chaos: install  ## the network under load while each part is killed and each server restarted: docs/reliability.md
	$(PY) -m chaos.run
ifndef CHAOS_FAULTS
	CHAOS_FAULTS=rabbitmq-leader CHAOS_ACCEPT=1 $(PY) -m chaos.run
endif

up:  ## the same network under docker compose, in the background (SCALE="--scale referrals=3 ...": replicas)
	SESSION_SECRET="$${SESSION_SECRET:-$$(./bin/local-secret session-secret)}" \
	DATA_ENCRYPTION_KEYS="$${DATA_ENCRYPTION_KEYS:-$$(./bin/local-secret data-encryption-key)}" \
	WEBHOOK_SECRET_KEYS="$${WEBHOOK_SECRET_KEYS:-$$(./bin/local-secret webhook-secret-key)}" \
	$(COMPOSE) up --build --detach $(SCALE)

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs --follow

clean:
	rm -rf $(VENV) .pytest_cache
