//! Client for the throwaway Bugsink server started by `scripts/bugsink.sh start`.
//!
//! Bugsink digests events synchronously (no worker) and validates them strictly: an
//! event that fails its JSON schema is not stored and logs a `ValidationError` in
//! [`Bugsink::log_path`].
//!
//! API used (all under `{url}/api/canonical/0/`, `Authorization: Bearer {token}`):
//! * `GET issues/?project={id}` → `{"next","previous","results":[issue]}`
//! * `GET events/?issue={issue uuid}` → `{"results":[{id, event_id, issue, ...}]}` (no data)
//! * `GET events/{event uuid}/` → `{id, event_id, issue, timestamp, ..., "data": {the event}}`
//!
//! The event's `event_id` is returned in dashed UUID form; helpers compare without dashes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Connection details of a running Bugsink, plus a HTTP client.
#[derive(Debug, Clone)]
pub struct Bugsink {
    /// `http://127.0.0.1:PORT` (`BUGSINK_URL`).
    pub url: String,
    /// API token (`BUGSINK_TOKEN`).
    pub token: String,
    /// The project's DSN (`BUGSINK_DSN`).
    pub dsn: String,
    /// The project's id (`BUGSINK_PROJECT_ID`).
    pub project_id: u64,
    /// gunicorn/Django log file (`BUGSINK_LOG`).
    pub log_path: PathBuf,
    client: reqwest::Client,
}

const KEYS: [&str; 5] = ["BUGSINK_URL", "BUGSINK_TOKEN", "BUGSINK_DSN", "BUGSINK_PROJECT_ID", "BUGSINK_LOG"];

/// Normalizes an event id for comparison: lowercase hex without dashes.
pub fn normalize_event_id(id: &str) -> String {
    id.chars().filter(|c| *c != '-').collect::<String>().to_ascii_lowercase()
}

impl Bugsink {
    /// Loads `<repo>/.tmp/bugsink/env`; each `BUGSINK_*` environment variable that is set
    /// overrides the file's value. Errors if a value is missing (Bugsink not started).
    pub fn from_env_file() -> Result<Self, String> {
        let path = crate::repo_root().join(".tmp/bugsink/env");
        let file = std::fs::read_to_string(&path).unwrap_or_default();
        let get = |key: &str| -> Result<String, String> {
            if let Ok(v) = std::env::var(key) {
                if !v.is_empty() {
                    return Ok(v);
                }
            }
            file.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!(
                        "{key} not set and not in {} (start Bugsink with `bash scripts/bugsink.sh start`, \
                         or run the suite with `bash scripts/test.sh`)",
                        path.display()
                    )
                })
        };
        let project_id = get(KEYS[3])?;
        Ok(Bugsink {
            url: get(KEYS[0])?.trim_end_matches('/').to_string(),
            token: get(KEYS[1])?,
            dsn: get(KEYS[2])?,
            project_id: project_id.parse().map_err(|e| format!("BUGSINK_PROJECT_ID={project_id:?}: {e}"))?,
            log_path: PathBuf::from(get(KEYS[4])?),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| e.to_string())?,
        })
    }

    /// The running Bugsink for a test, or `None` (after [`crate::skip_or_fail`]:
    /// a failure under `SENTRY_LITE_E2E=1`, else one line saying why the test skips).
    pub fn for_test() -> Option<Self> {
        let found = Self::from_env_file().and_then(|b| b.reachable().map(|()| b));
        match found {
            Ok(b) => Some(b),
            Err(e) => {
                crate::skip_or_fail(&format!("Bugsink unavailable: {e}"));
                None
            }
        }
    }

    /// Whether something listens at [`Bugsink::url`] (a stale env file names a
    /// server that is gone).
    fn reachable(&self) -> Result<(), String> {
        let host = self.url.split_once("://").map_or(self.url.as_str(), |(_, h)| h);
        let host = host.split('/').next().unwrap_or(host);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
            .map_err(|e| format!("{}: {e}", self.url))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.url))?;
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map(drop)
            .map_err(|e| format!("nothing answers at {}: {e}", self.url))
    }

    /// The public key of [`Bugsink::dsn`].
    pub fn public_key(&self) -> String {
        let rest = self.dsn.split_once("://").map(|(_, r)| r).unwrap_or(&self.dsn);
        let userinfo = rest.split_once('@').map(|(u, _)| u).unwrap_or("");
        userinfo.split(':').next().unwrap_or("").to_string()
    }

    /// `{url}/api/{project_id}/envelope/`
    pub fn envelope_url(&self) -> String {
        format!("{}/api/{}/envelope/", self.url, self.project_id)
    }

    /// POSTs a raw envelope with proper auth; returns (status, body).
    pub async fn post_envelope(&self, body: Vec<u8>) -> Result<(u16, String), String> {
        let auth =
            format!("Sentry sentry_version=7, sentry_key={}, sentry_client=sentry-lite-tests/0", self.public_key());
        let resp = self
            .client
            .post(self.envelope_url())
            .header("X-Sentry-Auth", auth)
            .header("Content-Type", "application/x-sentry-envelope")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST envelope: {e}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let resp = self.client.get(url).bearer_auth(&self.token).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("GET {url}: bad JSON: {e}"))
    }

    /// GETs a paginated list, following `next`.
    async fn get_all(&self, path_and_query: &str) -> Result<Vec<Value>, String> {
        let mut url = format!("{}/api/canonical/0/{path_and_query}", self.url);
        let mut out = Vec::new();
        loop {
            let page = self.get_json(&url).await?;
            if let Some(r) = page.get("results").and_then(Value::as_array) {
                out.extend(r.iter().cloned());
            }
            match page.get("next").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => url = next.to_string(),
                _ => break,
            }
        }
        Ok(out)
    }

    /// All issues of the project (`id` is the issue UUID; also `calculated_type`,
    /// `calculated_value`, `digested_event_count`, `stored_event_count`, `transaction`).
    pub async fn issues(&self) -> Result<Vec<Value>, String> {
        self.get_all(&format!("issues/?project={}", self.project_id)).await
    }

    /// Events of one issue, newest first, without `data` (`id` is Bugsink's event UUID).
    pub async fn issue_events(&self, issue_id: &str) -> Result<Vec<Value>, String> {
        self.get_all(&format!("events/?issue={issue_id}")).await
    }

    /// One event by Bugsink's internal UUID, including the full `data` (the stored event).
    pub async fn event(&self, internal_id: &str) -> Result<Value, String> {
        self.get_json(&format!("{}/api/canonical/0/events/{internal_id}/", self.url)).await
    }

    /// Finds a stored event by its Sentry `event_id` (dashed or not) and returns the full
    /// event (`data` holds the payload as stored). `Ok(None)` if not (yet) stored.
    pub async fn find_event(&self, event_id: &str) -> Result<Option<Value>, String> {
        let wanted = normalize_event_id(event_id);
        for issue in self.issues().await? {
            let Some(issue_id) = issue.get("id").and_then(Value::as_str) else { continue };
            for ev in self.issue_events(issue_id).await? {
                let eid = ev.get("event_id").and_then(Value::as_str).unwrap_or("");
                if normalize_event_id(eid) == wanted {
                    let id = ev.get("id").and_then(Value::as_str).unwrap_or("");
                    return self.event(id).await.map(Some);
                }
            }
        }
        Ok(None)
    }

    /// Polls [`Bugsink::find_event`] until the event appears or `timeout` passes.
    pub async fn wait_for_event(&self, event_id: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(ev)) = self.find_event(event_id).await {
                return Some(ev);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Current size of the log file, to check only later lines with
    /// [`Bugsink::validation_errors_since`].
    pub fn log_offset(&self) -> u64 {
        std::fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0)
    }

    /// The `ValidationError` lines logged from byte `offset` on (e.g.
    /// `django.core.exceptions.ValidationError: ["$.level: 'nonsense' is not one of [...]"]`).
    pub fn validation_errors_since(&self, offset: u64) -> Vec<String> {
        let bytes = std::fs::read(&self.log_path).unwrap_or_default();
        let start = (offset as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..])
            .lines()
            .filter(|l| l.contains("ValidationError"))
            .map(String::from)
            .collect()
    }

    /// All `ValidationError` lines in the log.
    pub fn validation_errors(&self) -> Vec<String> {
        self.validation_errors_since(0)
    }

    /// True if the log mentions a `ValidationError` (an event failed strict validation).
    pub fn log_contains_validation_error(&self) -> bool {
        !self.validation_errors().is_empty()
    }
}
