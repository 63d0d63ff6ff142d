//! Two concurrent tasks, each with its own scope, capture error chains; then a message.

use std::fmt;
use std::time::Duration;

use sentry_lite_core::{self as sentry, Level};

#[derive(Debug)]
struct ConfigError {
    source: ParseError,
}

#[derive(Debug)]
struct ParseError {
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

fn load_config(task: &str) -> Result<(), ConfigError> {
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, format!("settings.toml missing for task {task}"));
    Err(ConfigError { source: ParseError { source: io } })
}

async fn work(name: &'static str) {
    sentry::configure_scope(|scope| scope.set_tag("task", name));
    // Interleave with the other task to show that scopes stay apart.
    tokio::task::yield_now().await;
    sentry::add_breadcrumb(format!("working in {name}").as_str());
    tokio::time::sleep(Duration::from_millis(10)).await;
    if let Err(err) = load_config(name) {
        let id = sentry::capture_error(&err);
        println!("task {name}: captured {id}");
    }
}

#[tokio::main]
async fn main() {
    let guard = match sentry::init(sentry_lite_examples::options_from_env().with_release(concat!("quickstart@", env!("CARGO_PKG_VERSION")))) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let a = sentry::spawn(work("a"));
    let b = sentry::spawn(work("b"));
    let _ = tokio::join!(a, b);
    let id = sentry::capture_message("quickstart finished", Level::Info);
    println!("main: captured {id}");
    if !sentry::flush(Duration::from_secs(5)) {
        eprintln!("flush timed out");
    }
    drop(guard);
}
