//! Relay's own event normalizer, run from the `sentry-relay` Python package.
//!
//! `normalize` spawns `$RELAY_PYTHON` (default `<repo>/.venv/bin/python`, installed by
//! `scripts/setup-venv.sh`) on `scripts/relay_normalize.py` once per batch.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Relay's verdict on one event.
#[derive(Debug, Clone)]
pub struct RelayResult {
    /// No exception and no entry in the normalized event's `errors`.
    pub ok: bool,
    /// The normalized event's top-level `errors`, e.g.
    /// `{"type":"invalid_data","name":"level","value":"nonsense","reason":"invalid level"}`.
    pub errors: Vec<Value>,
    /// Errors recorded in `_meta`: `{"path":"a.b.0","errors":[["invalid_data",{"reason":..}]]}`.
    pub meta_errors: Vec<Value>,
    /// Silent rewrites that Relay does not count as errors, e.g.
    /// `platform 'rust' normalized to 'other'` (this Relay knows no "rust" platform).
    pub notes: Vec<String>,
    /// The normalized event (None if normalization raised).
    pub normalized: Option<Value>,
    /// Exception raised by the normalizer or the JSON parser, if any.
    pub exception: Option<String>,
}

/// The Python interpreter that has `sentry_relay`: `$RELAY_PYTHON` or `<repo>/.venv/bin/python`.
pub fn relay_python() -> PathBuf {
    match std::env::var_os("RELAY_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::repo_root().join(".venv/bin/python"),
    }
}

/// Whether Relay's normalizer can run here: `Ok` when [`relay_python`] imports
/// `sentry_relay` (checked once per process).
pub fn available() -> Result<(), String> {
    static CHECK: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    CHECK
        .get_or_init(|| {
            let python = relay_python();
            let out = Command::new(&python).args(["-c", "import sentry_relay"]).output();
            match out {
                Ok(o) if o.status.success() => Ok(()),
                Ok(_) => Err(format!("{} cannot import sentry_relay", python.display())),
                Err(e) => Err(format!("{} does not run ({e}); run `bash scripts/setup-venv.sh`", python.display())),
            }
        })
        .clone()
}

/// For a test that needs Relay: `true` when it is available, else
/// [`crate::skip_or_fail`] (a failure under `SENTRY_LITE_E2E=1`) and `false`.
pub fn usable() -> bool {
    match available() {
        Ok(()) => true,
        Err(e) => {
            crate::skip_or_fail(&format!("Relay's normalizer unavailable: {e}"));
            false
        }
    }
}

/// Normalizes every event with Relay's `StoreNormalizer`; one result per event, in order.
///
/// Panics if the Python environment is missing or the helper fails (run `scripts/test.sh`,
/// or `scripts/setup-venv.sh` first).
pub fn normalize(events: &[Value]) -> Vec<RelayResult> {
    if events.is_empty() {
        return Vec::new();
    }
    let python = relay_python();
    let script = crate::repo_root().join("scripts/relay_normalize.py");
    if !python.exists() {
        panic!(
            "Relay normalizer unavailable: {} does not exist{}. Run `bash scripts/setup-venv.sh` \
             (or the full suite via `bash scripts/test.sh`), or set RELAY_PYTHON.",
            python.display(),
            if crate::is_ci() { " (CI)" } else { "" }
        );
    }
    let mut input = Vec::new();
    for e in events {
        serde_json::to_writer(&mut input, e).expect("serialize event");
        input.push(b'\n');
    }
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), script.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for relay_normalize.py");
    let _ = writer.join();
    if !out.status.success() {
        panic!("relay_normalize.py failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let results: Vec<RelayResult> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line from relay_normalize.py: {e}: {l}"));
            let arr = |k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
            RelayResult {
                ok: v.get("ok").and_then(Value::as_bool).unwrap_or(false),
                errors: arr("errors"),
                meta_errors: arr("meta_errors"),
                notes: arr("notes").iter().filter_map(|n| n.as_str().map(String::from)).collect(),
                normalized: v.get("normalized").filter(|n| !n.is_null()).cloned(),
                exception: v.get("exception").and_then(Value::as_str).map(String::from),
            }
        })
        .collect();
    assert_eq!(
        results.len(),
        events.len(),
        "relay_normalize.py answered {} lines for {} events; stderr: {}",
        results.len(),
        events.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    results
}

/// Normalizes a single event.
pub fn normalize_one(event: &Value) -> RelayResult {
    normalize(std::slice::from_ref(event)).remove(0)
}

/// Panics with Relay's errors unless Relay accepts `event` without errors.
pub fn assert_valid(event: &Value) {
    assert_all_valid(std::slice::from_ref(event));
}

/// Panics with Relay's errors for every event Relay does not accept cleanly (one batch).
/// Without Relay, the check is skipped (see [`usable`]).
pub fn assert_all_valid(events: &[Value]) {
    if !usable() {
        return;
    }
    let mut failures = Vec::new();
    for (i, (r, e)) in normalize(events).iter().zip(events).enumerate() {
        if !r.ok {
            failures.push(format!(
                "event #{i}: errors={} exception={:?}\n  event: {}",
                Value::Array(r.errors.clone()),
                r.exception,
                e
            ));
        }
    }
    if !failures.is_empty() {
        panic!("Relay rejected {} event(s):\n{}", failures.len(), failures.join("\n"));
    }
}
