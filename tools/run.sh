#!/usr/bin/env bash
# `make run`: services, migrations, demo data, then Celery worker and beat in the background and the
# web app in the foreground. Ctrl-C stops the web app, the worker and beat; PostgreSQL and Redis keep
# running for the next start (`make services-down` stops them). Expects `make install` to have run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=.venv/bin/python
RUN_DIR="${CARE_RUN_DIR:-.run}"
PORT="${PORT:-8000}"
STOP_GRACE_SECONDS=10

"$PY" tools/devservices.py up --mode run
# shellcheck source=/dev/null
source "$RUN_DIR/services.env"
export DJANGO_DEBUG=1
export PYTHONUNBUFFERED=1

"$PY" manage.py migrate --noinput
"$PY" manage.py seed_demo

children=()

stop_children() {
    local pid waited=0
    [[ ${#children[@]} -gt 0 ]] || return 0
    echo "==> stopping Celery worker and beat"
    for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # A warm Celery shutdown finishes the running task; do not wait for it forever.
    while ((waited < STOP_GRACE_SECONDS * 10)); do
        local alive=0
        for pid in "${children[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.1
        waited=$((waited + 1))
    done
    for pid in "${children[@]}"; do
        pkill -KILL -P "$pid" 2>/dev/null || true  # the worker's pool processes
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap stop_children EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start a background process whose output goes to this terminal, each line prefixed with its name.
start_prefixed() {
    local name="$1"
    shift
    "$@" > >(awk -v prefix="[$name] " '{ print prefix $0; fflush() }') 2>&1 &
    children+=("$!")
}

start_prefixed worker .venv/bin/celery -A config worker -l info
start_prefixed beat .venv/bin/celery -A config beat -l info -s "$RUN_DIR/celerybeat-schedule"

cat <<EOF

  Care runs at http://127.0.0.1:$PORT/   (admin: http://127.0.0.1:$PORT/admin/)

  Demo logins (email / password):
    admin       admin@care.example       care-admin
    supervisor  supervisor@care.example  care-supervisor
    agent       agent@care.example       care-agent
    portal      portal@energie.example   care-portal

  Ctrl-C stops the web app, the Celery worker and beat. \`make services-down\` stops PostgreSQL and Redis.

EOF

"$PY" manage.py runserver "127.0.0.1:$PORT"
