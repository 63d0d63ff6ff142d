//! Test harness for the sentry-lite workspace.
//!
//! * [`fault_server`]: an in-process loopback HTTP/1.1 server that records what SDKs send
//!   and can misbehave on demand (refuse, hang, reset, 429, garbage, ...).
//! * [`relay`]: runs events through Relay's own normalizer (`sentry-relay` Python package)
//!   and reports what Relay considers invalid.
//! * [`bugsink`]: a client for the throwaway Bugsink server started by `scripts/bugsink.sh`
//!   (a real Sentry-compatible ingestion + storage), to read back what was stored.
//!
//! `scripts/test.sh` installs the Python tools, starts Bugsink and sets
//! `SENTRY_LITE_E2E=1`, which makes the tests that need them mandatory; a plain
//! `cargo test` skips those tests with one line each saying why.

pub mod bugsink;
pub mod fault_server;
pub mod relay;

use std::path::PathBuf;

/// The repository root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Whether tests that need Bugsink or Relay must run: `SENTRY_LITE_E2E=1`, which
/// `scripts/test.sh` sets. Without it such a test skips, with one line saying why.
pub fn e2e_required() -> bool {
    matches!(std::env::var("SENTRY_LITE_E2E"), Ok(v) if v == "1" || v == "true")
}

/// For a test whose receiver (Bugsink, Relay) is unavailable: panics with `why`
/// when [`e2e_required`], else prints one line saying why the test skips (written
/// past the test harness's output capture, so it shows) and returns.
pub fn skip_or_fail(why: &str) {
    if e2e_required() {
        panic!("{why} (required: SENTRY_LITE_E2E=1)");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let line = format!("SKIPPED {test}: {why}; set SENTRY_LITE_E2E=1 (scripts/test.sh does) to require it\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// A Python 3 interpreter for helper servers: the repository's `.venv` one when
/// installed, else `python3` from `PATH`.
pub fn python() -> PathBuf {
    let venv = relay::relay_python();
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// True when running under CI (`CI` set to anything but empty/`0`/`false`).
pub fn is_ci() -> bool {
    matches!(std::env::var("CI"), Ok(v) if !v.is_empty() && v != "0" && v != "false")
}

/// Parses a Sentry envelope (`headers \n (item-headers \n payload \n)*`).
///
/// Strict: every header line must be a JSON object, item headers need a `type`, and a
/// payload with `length` must be followed by `\n` or end of input.
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, String> {
    let mut pos = 0usize;
    let next_line = |pos: &mut usize| -> Option<&[u8]> {
        if *pos >= body.len() {
            return None;
        }
        let rest = &body[*pos..];
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        *pos += (end + 1).min(rest.len());
        Some(&rest[..end])
    };
    let header_line = next_line(&mut pos).ok_or("empty envelope")?;
    let headers: serde_json::Value =
        serde_json::from_slice(header_line).map_err(|e| format!("envelope header is not JSON: {e}"))?;
    if !headers.is_object() {
        return Err("envelope header is not a JSON object".into());
    }
    let mut items = Vec::new();
    loop {
        // skip trailing empty lines only at the very end
        if pos >= body.len() {
            break;
        }
        let line = next_line(&mut pos).unwrap_or_default();
        if line.is_empty() {
            if pos >= body.len() {
                break;
            }
            return Err(format!("empty item header line at byte {pos}"));
        }
        let header: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| format!("item header is not JSON: {e}"))?;
        if header.get("type").and_then(|t| t.as_str()).is_none() {
            return Err(format!("item header without type: {header}"));
        }
        let payload = if let Some(len) = header.get("length") {
            let len = len.as_u64().ok_or("item length is not an unsigned integer")? as usize;
            if pos + len > body.len() {
                return Err(format!("item length {len} runs past the end of the envelope"));
            }
            let p = body[pos..pos + len].to_vec();
            pos += len;
            if pos < body.len() {
                if body[pos] != b'\n' {
                    return Err(format!("payload of length {len} not followed by newline"));
                }
                pos += 1;
            }
            p
        } else {
            next_line(&mut pos).unwrap_or_default().to_vec()
        };
        items.push(EnvelopeItem { header, payload });
    }
    Ok(Envelope { headers, items })
}

/// A parsed envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The envelope headers (first line).
    pub headers: serde_json::Value,
    /// The items in order.
    pub items: Vec<EnvelopeItem>,
}

/// One envelope item.
#[derive(Debug, Clone)]
pub struct EnvelopeItem {
    /// The item headers (`type`, `length`, ...).
    pub header: serde_json::Value,
    /// The raw payload bytes.
    pub payload: Vec<u8>,
}

impl EnvelopeItem {
    /// The item `type` header.
    pub fn ty(&self) -> &str {
        self.header.get("type").and_then(|t| t.as_str()).unwrap_or("")
    }

    /// The payload parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.payload).map_err(|e| format!("{} payload is not JSON: {e}", self.ty()))
    }
}

impl Envelope {
    /// Items of the given type.
    pub fn items_of<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a EnvelopeItem> + 'a {
        self.items.iter().filter(move |i| i.ty() == ty)
    }

    /// JSON payloads of all `event` and `transaction` items.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.items.iter().filter(|i| matches!(i.ty(), "event" | "transaction")).filter_map(|i| i.json().ok()).collect()
    }
}
