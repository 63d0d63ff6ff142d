#!/usr/bin/env bash
# The project's one test command (CI runs it through .ci/run).
#
#   bash scripts/test.sh
#
# Needs only cargo and python3: installs the Python tools into .venv, starts a
# throwaway Bugsink on 127.0.0.1 (stopped on exit), then runs the Rust tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

banner() { printf '\n==== %s ====\n' "$*"; }

banner "setup: python venv (bugsink, gunicorn, sentry-relay)"
bash scripts/setup-venv.sh

banner "setup: start Bugsink"
trap 'bash scripts/bugsink.sh stop' EXIT
bash scripts/bugsink.sh start
set -a
# shellcheck disable=SC1091
. "$ROOT/.tmp/bugsink/env"
set +a
export RELAY_PYTHON="$ROOT/.venv/bin/python"
# Tests that need Bugsink or Relay fail here rather than skip.
export SENTRY_LITE_E2E=1

status=0

banner "layers: imports in sentry-lite-core point down"
bash scripts/check-layers.sh || status=$?

banner "cargo fmt --check"
cargo fmt --all -- --check || status=$?

banner "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets -- -D warnings || status=$?

banner "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps || status=$?

banner "cargo test --workspace --all-targets"
# --no-fail-fast: one run reports every failing test binary, not just the first
cargo test --workspace --all-targets --no-fail-fast || status=$?

banner "cargo test --workspace --doc"
cargo test --workspace --doc --no-fail-fast || status=$?

# The `panic` example built for real with `panic = "abort"` (profile release-abort):
# its event must reach the receiver before the process aborts. A release build, so
# it runs as its own stage.
banner "panic = \"abort\": the real release-abort build of the panic example"
cargo test -p sentry-lite-tests --test panic -- --ignored || status=$?

if [ "$status" -eq 0 ]; then
    banner "all tests passed"
else
    banner "TESTS FAILED (exit $status)"
fi
exit "$status"
