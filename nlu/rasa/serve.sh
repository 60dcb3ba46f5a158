#!/usr/bin/env bash
# Create the Rasa 3.6 venv (Python 3.10) if missing, train an NLU model on nlu/data and serve it on
# loopback:  POST http://127.0.0.1:${ZTC_RASA_PORT:-5005}/model/parse
# Env: ZTC_RASA_VENV (default <repo>/.rasa-venv), ZTC_RASA_PORT (5005), ZTC_RASA_CONFIG
# (nlu/rasa/config-ci.yml; nlu/config.yml is the full model), ZTC_RASA_DATA (nlu/data).
# Runs in the foreground (exec); PID in $VENV/rasa.pid, log in $VENV/rasa.log. `--install-only`
# and `--train-only` stop early.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${ZTC_RASA_VENV:-$REPO/.rasa-venv}"
PORT="${ZTC_RASA_PORT:-5005}"
CONFIG="${ZTC_RASA_CONFIG:-nlu/rasa/config-ci.yml}"
DATA="${ZTC_RASA_DATA:-nlu/data}"
cd "$REPO"

if [ ! -x "$VENV/bin/rasa" ]; then
  PY="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/3.10.13/bin/python"
  [ -x "$PY" ] || PY="$(command -v python3.10)"
  echo "serve.sh: creating the Rasa venv at $VENV with $PY (takes a few minutes)" >&2
  "$PY" -m venv "$VENV"
  # pinned so the resolver does not wander: Rasa 3.6.21 needs setuptools>=70 and still imports pkg_resources
  "$VENV/bin/pip" install -q "pip<24.1" "setuptools>=70,<75" wheel
  "$VENV/bin/pip" install -q "rasa[jieba]==3.6.21" "setuptools>=70,<75"
fi
[ "${1:-}" = "--install-only" ] && exit 0

export SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=3 RASA_TELEMETRY_ENABLED=false
MODELS="$VENV/models"
mkdir -p "$MODELS"
# one model per (data, config) content: retrain only when they changed
HASH="$(cat "$CONFIG" "$DATA"/*.yml nlu/rasa/jieba/*.txt | sha256sum | cut -c1-12)"
MODEL="$MODELS/nlu-$HASH.tar.gz"
if [ ! -f "$MODEL" ]; then
  echo "serve.sh: training $MODEL on $DATA with $CONFIG" >&2
  "$VENV/bin/rasa" train nlu --nlu "$DATA" --config "$CONFIG" --out "$MODELS" \
    --fixed-model-name "nlu-$HASH" >"$VENV/train.log" 2>&1 || { tail -40 "$VENV/train.log" >&2; exit 1; }
fi
[ "${1:-}" = "--train-only" ] && exit 0

echo "serve.sh: serving $MODEL on 127.0.0.1:$PORT (log $VENV/rasa.log)" >&2
echo $$ >"$VENV/rasa.pid"
exec "$VENV/bin/rasa" run --enable-api -m "$MODEL" -i 127.0.0.1 -p "$PORT" >>"$VENV/rasa.log" 2>&1
