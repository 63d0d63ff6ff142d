use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Breadcrumbs, Contexts, EventId, Exception, Level, Threads, Timestamp, Values};

/// An error or message event (item type `event`), or a transaction in static mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id, also written in the envelope header.
    pub event_id: EventId,
    /// `transaction` for static-mode transactions, absent for errors.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// When the event happened (the end, for transactions).
    pub timestamp: Timestamp,
    /// Start time; transactions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Timestamp>,
    /// Always `native`: Relay rewrites `rust` to `other`, while `native` keeps frame handling.
    pub platform: Cow<'static, str>,
    /// Severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Logger name, e.g. a `tracing` target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    /// Transaction (route) name active when the event happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// How the transaction name was derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_info: Option<TransactionInfo>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Distribution of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dist: Option<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logentry: Option<LogEntry>,
    /// Exceptions, root cause first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<Values<Exception>>,
    /// Threads, e.g. the panicking one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<Threads>,
    /// Tags (string to string).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Arbitrary extra data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
    /// Grouping fingerprint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprint: Vec<String>,
    /// Contexts (trace, os, runtime, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: Contexts,
    /// Breadcrumbs, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breadcrumbs: Option<Breadcrumbs>,
    /// The user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// The HTTP request being handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// Child spans; static-mode transactions only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Value>,
    /// The SDK that sent this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkInfo>,
}

impl Event {
    /// A new event with a fresh id and timestamp.
    pub fn new() -> Self {
        Self {
            event_id: EventId::new(),
            timestamp: Timestamp::now(),
            platform: Cow::Borrowed("native"),
            ..Self::default()
        }
    }

    /// Sets the message.
    pub fn set_message(&mut self, message: impl Into<String>) {
        self.logentry = Some(LogEntry { message: message.into(), params: Vec::new() });
    }
}

/// The `logentry` interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The message (or its template when `params` is set).
    pub message: String,
    /// Template parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Value>,
}

/// `transaction_info` on events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransactionInfo {
    /// `route`, `url`, `custom`, ...
    pub source: String,
}

/// The user affected by an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Application id of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// IP address; only sent with `send_default_pii`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Other fields.
    #[serde(flatten, default)]
    pub other: BTreeMap<String, Value>,
}

/// The HTTP request an event happened in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Full URL without the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Query string without `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string: Option<String>,
    /// Headers, already filtered for PII.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Cookies; only with `send_default_pii`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookies: Option<String>,
    /// Body; only with `send_default_pii`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Environment such as `REMOTE_ADDR`; only with `send_default_pii`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// The SDK name sent in `sdk.name` and `User-Agent`.
pub const SDK_NAME: &str = "sentry.rust.lite";
/// The SDK version.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `sdk` interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SdkInfo {
    /// SDK name, `sentry.rust.lite`.
    pub name: String,
    /// SDK version.
    pub version: String,
    /// Enabled integrations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations: Vec<String>,
    /// Packages making up the SDK.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<SdkPackage>,
}

/// One package of the SDK.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SdkPackage {
    /// e.g. `cargo:sentry-lite-core`.
    pub name: String,
    /// Version.
    pub version: String,
}
