//! The quickstart workload, shared by the `quickstart` binary and the end-to-end tests.

use std::fmt;
use std::time::Duration;

use sentry_lite_core::{self as sentry, EventId, Level};

/// The outermost error of the quickstart chain.
#[derive(Debug)]
pub struct ConfigError {
    source: ParseError,
}

/// The middle error of the quickstart chain.
#[derive(Debug)]
pub struct ParseError {
    source: std::io::Error,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("could not load configuration")
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("could not parse settings.toml")
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Fails with a three-level chain: config error ← parse error ← io error.
pub fn load_config(task: &str) -> Result<(), ConfigError> {
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, format!("settings.toml missing for task {task}"));
    Err(ConfigError { source: ParseError { source: io } })
}

/// One unit of work: its own tag and breadcrumb, then a captured error chain.
pub async fn work(name: &'static str) -> EventId {
    sentry::configure_scope(|scope| scope.set_tag("task", name));
    // Interleave with the other task to show that scopes stay apart.
    tokio::task::yield_now().await;
    sentry::add_breadcrumb(format!("working in {name}").as_str());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let err = load_config(name).expect_err("load_config always fails");
    let id = sentry::capture_error(&err);
    println!("task {name}: captured {id}");
    id
}

/// The quickstart: tasks `a` and `b` concurrently, then a closing message.
/// Returns the ids of the two error events and of the message.
pub async fn run() -> [EventId; 3] {
    let a = sentry::spawn(work("a"));
    let b = sentry::spawn(work("b"));
    let (a, b) = tokio::join!(a, b);
    let id = sentry::capture_message("quickstart finished", Level::Info);
    println!("main: captured {id}");
    [a.unwrap_or_default(), b.unwrap_or_default(), id]
}
