//! Panic hook integration for sentry-lite.
//!
//! Coming: a panic hook that reports every panic as a fatal event with the panic
//! message, location, thread and stack, flushed before the process goes down.
