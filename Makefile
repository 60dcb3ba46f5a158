# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
ZTC_RASA_VENV ?= $(HOME)/.cache/zhitongche/rasa-3.6.21
ZTC_RASA_PORT ?= 5065
export ZTC_RASA_VENV ZTC_RASA_PORT

.PHONY: demo test install system-deps services rasa-up rasa-down bench

$(BIN)/zhitongche: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/zhitongche

demo: install
	$(BIN)/zhitongche demo

# Debian packages the browser tests need (chromium drives the simulator page; CJK fonts render it).
system-deps:
	@command -v chromium >/dev/null && fc-list | grep -qi 'Noto.*CJK' || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk; }

# PostgreSQL and Redis, started only when they are not answering.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "PostgreSQL or Redis did not start"; exit 1

# A real Rasa 3.6 server (Python 3.10, its own venv, trained on nlu/) in the background.
rasa-up:
	bash nlu/rasa/serve.sh --train-only
	nohup bash nlu/rasa/serve.sh >/dev/null 2>&1 &
	@for i in $$(seq 180); do \
	  curl -sf http://127.0.0.1:$(ZTC_RASA_PORT)/status >/dev/null && echo "Rasa server up on port $(ZTC_RASA_PORT)" && exit 0; \
	  sleep 1; done; echo "Rasa server did not start:"; tail -30 $(ZTC_RASA_VENV)/rasa.log; exit 1

rasa-down:
	@[ -f $(ZTC_RASA_VENV)/rasa.pid ] && kill $$(cat $(ZTC_RASA_VENV)/rasa.pid) 2>/dev/null; rm -f $(ZTC_RASA_VENV)/rasa.pid; true

test: install system-deps services rasa-up
	ZTC_RASA_URL=http://127.0.0.1:$(ZTC_RASA_PORT) $(BIN)/python -m pytest -p no:cacheprovider -q; \
	  status=$$?; $(MAKE) --no-print-directory rasa-down; exit $$status

bench: install services
	$(BIN)/python bench/bench_webhook.py
	$(BIN)/python bench/bench_wrk.py
	$(BIN)/python bench/bench_floor.py
	$(BIN)/python bench/bench_nlu.py
