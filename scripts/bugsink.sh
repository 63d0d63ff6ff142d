#!/usr/bin/env bash
# Start/stop a throwaway Bugsink (Sentry-compatible server) for the test suite.
#
#   scripts/bugsink.sh start   # configure under .tmp/bugsink/, serve on 127.0.0.1:<free port>,
#                              # create team + project, write .tmp/bugsink/env
#   scripts/bugsink.sh stop    # kill only the PIDs recorded by `start`
#
# Events are digested synchronously (SNAPPEA TASK_ALWAYS_EAGER, no worker) and
# validated strictly (VALIDATE_ON_DIGEST=strict: invalid events log a ValidationError).
# The server stops by itself after BUGSINK_MAX_SECONDS (default 1800) via a watchdog.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DIR="$ROOT/.tmp/bugsink"
VENV="$ROOT/.venv"
PIDFILE="$DIR/gunicorn.pid"
WDFILE="$DIR/watchdog.pid"
ENVFILE="$DIR/env"
LOG="$DIR/gunicorn.log"

die() { echo "bugsink: ERROR: $*" >&2; exit 1; }
say() { echo "bugsink: $*"; }

# Kill the PID recorded in file $1; with $2=group also its process group (it was
# started under setsid, so the group holds only what we started: e.g. the watchdog's sleep).
kill_pidfile() {
    local f="$1" mode="${2:-}" pid
    [ -f "$f" ] || return 0
    pid="$(cat "$f" 2>/dev/null || true)"
    rm -f "$f"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    # only touch a process that is really ours (its command line names our dir)
    [ -r "/proc/$pid/cmdline" ] || return 0
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$DIR" || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [ "$mode" = group ]; then
        kill -TERM -- "-$pid" 2>/dev/null || true
    fi
    return 0
}

stop() {
    # gunicorn master first (it takes its own workers down), then the watchdog.
    kill_pidfile "$PIDFILE" group
    kill_pidfile "$WDFILE" group
    say "stopped"
}

start() {
    [ -x "$VENV/bin/python" ] || die "$VENV missing: run scripts/setup-venv.sh first"
    for exe in bugsink-create-conf bugsink-manage gunicorn; do
        [ -x "$VENV/bin/$exe" ] || die "$VENV/bin/$exe missing: run scripts/setup-venv.sh"
    done
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        say "already running (pid $(cat "$PIDFILE")); restarting"
    fi
    stop >/dev/null

    rm -rf "$DIR"
    mkdir -p "$DIR/ingestion"
    chmod 700 "$DIR/ingestion"  # Bugsink warns about anything else
    local PY="$VENV/bin/python"
    local PORT
    PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    local URL="http://127.0.0.1:$PORT"

    say "configuring in $DIR (port $PORT)"
    ( cd "$DIR" && "$VENV/bin/bugsink-create-conf" --template=local --host=127.0.0.1 --port="$PORT" \
        --output-file=bugsink_conf.py >/dev/null ) || die "bugsink-create-conf failed"
    cat >>"$DIR/bugsink_conf.py" <<PYEOF

# --- sentry-lite test harness overrides ---
DATABASES["default"]["NAME"] = "$DIR/db.sqlite3"
DATABASES["snappea"]["NAME"] = "$DIR/snappea.sqlite3"
SNAPPEA = {"TASK_ALWAYS_EAGER": True}  # digest synchronously inside the ingest request, no worker
BUGSINK["VALIDATE_ON_DIGEST"] = "strict"  # invalid events -> ValidationError in the log
BUGSINK["INGEST_STORE_BASE_DIR"] = "$DIR/ingestion"
BUGSINK["PHONEHOME"] = False
BUGSINK["MAX_EVENTS_PER_PROJECT_PER_5_MINUTES"] = 1_000_000
BUGSINK["MAX_EVENTS_PER_PROJECT_PER_HOUR"] = 1_000_000
BUGSINK["MAX_EVENTS_PER_5_MINUTES"] = 1_000_000
BUGSINK["MAX_EVENTS_PER_HOUR"] = 1_000_000
PYEOF

    export DJANGO_SETTINGS_MODULE=bugsink_conf
    export PYTHONPATH="$DIR${PYTHONPATH:+:$PYTHONPATH}"
    cd "$DIR"

    say "migrating"
    "$VENV/bin/bugsink-manage" migrate --no-input >"$DIR/migrate.log" 2>&1 \
        || { tail -20 "$DIR/migrate.log" >&2; die "migrate failed"; }
    "$VENV/bin/bugsink-manage" migrate snappea --database=snappea --no-input >>"$DIR/migrate.log" 2>&1 \
        || { tail -20 "$DIR/migrate.log" >&2; die "migrate snappea failed"; }

    DJANGO_SUPERUSER_USERNAME=admin DJANGO_SUPERUSER_PASSWORD=admin DJANGO_SUPERUSER_EMAIL=admin@example.invalid \
        "$VENV/bin/bugsink-manage" createsuperuser --no-input >>"$DIR/migrate.log" 2>&1 \
        || grep -q "already taken\|already exists" "$DIR/migrate.log" \
        || { tail -20 "$DIR/migrate.log" >&2; die "createsuperuser failed"; }

    local TOKEN
    TOKEN="$("$VENV/bin/bugsink-manage" create_auth_token 2>>"$DIR/migrate.log" | tail -1 | tr -d '[:space:]')"
    [[ "$TOKEN" =~ ^[0-9a-fA-F]{20,}$ ]] || die "create_auth_token returned '$TOKEN'"

    say "serving on $URL (log: $LOG)"
    # gunicorn >= 25 opens a control socket under ~/.gunicorn shared by all instances: not ours to touch.
    local EXTRA=()
    if "$VENV/bin/gunicorn" --help 2>/dev/null | grep -q -- '--no-control-socket'; then
        EXTRA+=(--no-control-socket)
    fi
    # setsid: own process group, so the caller's signals/ttys don't leak in; only the PID is recorded.
    setsid "$VENV/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers 1 --threads 4 --timeout 60 \
        --pid "$PIDFILE" --access-logfile - --error-logfile - --capture-output "${EXTRA[@]}" \
        bugsink.wsgi >"$LOG" 2>&1 < /dev/null &
    local GPID=$!
    echo "$GPID" >"$PIDFILE"

    # Watchdog: the server never outlives BUGSINK_MAX_SECONDS even if `stop` is never called.
    local MAX="${BUGSINK_MAX_SECONDS:-1800}"
    setsid bash -c "sleep $MAX; kill -TERM $GPID 2>/dev/null; rm -f '$PIDFILE'" >/dev/null 2>&1 < /dev/null &
    echo "$!" >"$WDFILE"

    local ok=""
    for _ in $(seq 1 120); do
        kill -0 "$GPID" 2>/dev/null || { tail -30 "$LOG" >&2; stop >/dev/null; die "gunicorn exited"; }
        if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('$URL/health/ready', timeout=2)" 2>/dev/null; then
            ok=1; break
        fi
        sleep 0.5
    done
    [ -n "$ok" ] || { tail -30 "$LOG" >&2; stop >/dev/null; die "server did not answer on $URL/health/ready"; }

    say "creating team and project"
    local OUT
    OUT="$("$PY" - "$URL" "$TOKEN" <<'PYEOF'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    req = urllib.request.Request(url + "/api/canonical/0/" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: HTTP {e.code}: {e.read()[:500]!r}")
team = call("POST", "teams/", {"name": "sentry-lite"})
call("POST", "projects/", {"team": team["id"], "name": "sentry-lite-tests"})
projects = call("GET", "projects/?team=" + team["id"])["results"]
p = [p for p in projects if p["name"] == "sentry-lite-tests"][0]
print(p["id"], p["dsn"])
PYEOF
)" || { stop >/dev/null; die "creating team/project via API failed"; }
    local PROJECT_ID DSN
    read -r PROJECT_ID DSN <<<"$OUT"
    [ -n "$DSN" ] || { stop >/dev/null; die "no DSN from API"; }

    cat >"$ENVFILE" <<ENVEOF
BUGSINK_URL=$URL
BUGSINK_TOKEN=$TOKEN
BUGSINK_DSN=$DSN
BUGSINK_PROJECT_ID=$PROJECT_ID
BUGSINK_LOG=$LOG
ENVEOF
    say "ready: $URL project=$PROJECT_ID dsn=$DSN (env in $ENVFILE)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
