use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A `{"values": [...]}` wrapper as several interfaces use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Values<T> {
    /// The values.
    pub values: Vec<T>,
}

/// One exception of a chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exception {
    /// Type name, e.g. `std::io::Error`.
    // `Cow`: a name known at compile time (`type_name`, `panic`) is not copied.
    #[serde(rename = "type")]
    pub ty: Cow<'static, str>,
    /// The `Display` text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Module the type lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Thread it was raised on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u64>,
    /// Its stack trace.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::raw_frames::serialize_stacktrace"
    )]
    pub stacktrace: Option<Stacktrace>,
    /// How it was captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<Mechanism>,
}

/// How an exception was captured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mechanism {
    /// `generic`, `panic`, `chained`, ...
    // `Cow`: the SDK's own values are fixed, so building one costs no allocation
    // on the capturing thread.
    #[serde(rename = "type")]
    pub ty: Cow<'static, str>,
    /// Whether the application handled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled: Option<bool>,
    /// Whether the exception type was made up by the SDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<bool>,
    /// Id of this exception within the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception_id: Option<u32>,
    /// Id of the exception this one caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u32>,
    /// Whether this is an exception group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_exception_group: Option<bool>,
    /// Source (e.g. `source`) within the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Cow<'static, str>>,
}

/// A stack trace, oldest frame first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stacktrace {
    /// Frames, oldest first, crashing frame last.
    pub frames: Vec<Frame>,
}

/// One stack frame.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Demangled function name without the hash suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Module path, e.g. `my_app::db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Short file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Absolute path of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_path: Option<String>,
    /// Line number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u32>,
    /// Column number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colno: Option<u32>,
    /// Whether the frame is the application's own code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
    /// Instruction address as `0x…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_addr: Option<String>,
    /// Address of the function's symbol as `0x…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol_addr: Option<String>,
}

/// The `threads` interface.
pub type Threads = Values<Thread>;

/// One thread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    /// Thread id.
    pub id: u64,
    /// Thread name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether this thread crashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crashed: Option<bool>,
    /// Whether this thread was running the capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
    /// Whether this is the main thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<bool>,
    /// Its stack trace.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::raw_frames::serialize_stacktrace"
    )]
    pub stacktrace: Option<Stacktrace>,
    /// Its state when the event was made, e.g. `RUNNABLE`, `WAITING`, `BLOCKED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Locks it holds or waits for, by a key naming each lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_locks: Option<std::collections::BTreeMap<String, LockReason>>,
}

/// A lock a thread holds or waits for (the `held_locks` of a [`Thread`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockReason {
    /// How the thread relates to the lock: 1 holds it, 2 waits with a timeout,
    /// 4 sleeps, 8 is blocked on it ([`LockReason::LOCKED`] and the others).
    #[serde(rename = "type")]
    pub ty: u8,
    /// Address of the lock, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Package (crate or module) of the lock's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// The lock's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// The thread holding the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u64>,
}

impl LockReason {
    /// The thread holds the lock.
    pub const LOCKED: u8 = 1;
    /// The thread waits on it with a timeout.
    pub const WAITING: u8 = 2;
    /// The thread sleeps.
    pub const SLEEPING: u8 = 4;
    /// The thread is blocked on it.
    pub const BLOCKED: u8 = 8;
}
