use serde::{Deserialize, Serialize};

/// Severity of an event or breadcrumb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Debug information.
    Debug,
    /// Informational.
    Info,
    /// A warning.
    Warning,
    /// An error (the default for events).
    #[default]
    Error,
    /// A fatal error, e.g. a panic.
    Fatal,
}

impl Level {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}
