#!/usr/bin/env bash
# Idempotently create <repo>/.venv with the Python tools the test suite needs:
# Bugsink (a Sentry-compatible server), gunicorn and sentry-relay (Relay's
# event normalizer). Reruns are fast when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PY="${PYTHON:-python3}"
REQS=("bugsink==2.6.1" "gunicorn" "sentry-relay>=0.10,<0.11")

if ! command -v "$PY" >/dev/null 2>&1; then
    echo "setup-venv: ERROR: $PY not found" >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup-venv: creating $VENV"
    "$PY" -m venv "$VENV"
fi

# Fast path: all requirements already satisfied at the pinned versions.
if "$VENV/bin/python" - "${REQS[@]}" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
for spec in sys.argv[1:]:
    req = Requirement(spec)
    try:
        v = version(req.name)
    except PackageNotFoundError:
        sys.exit(1)
    if req.specifier and not req.specifier.contains(v, prereleases=True):
        sys.exit(1)
sys.exit(0)
PYEOF
then
    echo "setup-venv: $VENV up to date (${REQS[*]})"
    exit 0
fi

echo "setup-venv: installing ${REQS[*]} into $VENV (this takes a minute)"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "${REQS[@]}"
echo "setup-venv: done"
