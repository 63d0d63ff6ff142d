//! Stack traces: captured unresolved on the caller's thread (instruction pointers
//! only), symbolicated later on the worker.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::protocol::{Frame, Stacktrace};

/// Relay keeps at most this many frames; deeper stacks keep both ends.
const MAX_FRAMES: usize = 50;
/// Unwinding stops here so deep recursion cannot make a capture slow.
const MAX_CAPTURED: usize = 256;
/// Instruction pointers a [`SymbolCache`] holds before it starts over.
const SYMBOL_CACHE_CAPACITY: usize = 10_000;

/// Symbolicated frames by instruction pointer (one ip yields several frames when
/// functions were inlined), so that the stacks an application captures again and
/// again are resolved once. Bounded: when full it is cleared and refilled.
///
/// The frames are stored exactly as symbolication produced them; `in_app` is left
/// unset and decided per event from the client's rules.
#[derive(Default)]
pub(crate) struct SymbolCache {
    frames: AddrMap<usize, Box<[Frame]>>,
}

/// A map keyed by code addresses (and small indices).
pub(crate) type AddrMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;

/// Hashes code addresses for the worker's symbol caches, ~30 lookups per event:
/// the keys come from the process's own stacks, not from an attacker, so
/// SipHash's flooding protection buys nothing there and costs ~10 times more.
#[derive(Default, Clone, Copy)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // The product's high bits are its well-mixed ones; the table indexes by the low.
        self.0.rotate_left(26)
    }
}

impl SymbolCache {
    /// Appends the frames of `ip` to `out`, resolving them on a miss.
    #[cfg(test)]
    fn push_frames(&mut self, ip: usize, out: &mut Vec<Frame>) {
        self.fill(std::slice::from_ref(&ip));
        out.extend_from_slice(&self.frames[&ip]);
    }

    /// Resolves the instruction pointers of `ips` that are not cached yet. When
    /// they would not fit, the cache starts over first, so that afterwards every
    /// one of `ips` is in it.
    fn fill(&mut self, ips: &[usize]) {
        let missing = ips.iter().filter(|ip| !self.frames.contains_key(ip)).count();
        if missing == 0 {
            return;
        }
        if self.frames.len() + missing > SYMBOL_CACHE_CAPACITY {
            self.frames.clear();
        }
        let mut out = Vec::new();
        for &ip in ips {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.frames.entry(ip) {
                out.clear();
                resolve_ip(ip, &mut out);
                slot.insert(out.as_slice().into());
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.frames.len()
    }
}

/// Appends the frames of one instruction pointer (innermost inlined frame first).
fn resolve_ip(ip: usize, out: &mut Vec<Frame>) {
    let mut resolved_any = false;
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        resolved_any = true;
        out.push(frame_from_symbol(ip, symbol));
    });
    if !resolved_any {
        out.push(Frame { instruction_addr: Some(format!("{ip:#x}")), ..Frame::default() });
    }
}

/// Instruction pointers of a stack, innermost first, not yet symbolicated.
#[derive(Clone, Default)]
pub struct RawBacktrace {
    ips: Vec<usize>,
}

impl fmt::Debug for RawBacktrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawBacktrace({} frames)", self.ips.len())
    }
}

impl RawBacktrace {
    /// Captures the current stack without resolving symbols.
    #[inline(never)]
    pub fn capture() -> Self {
        let mut ips = Vec::with_capacity(48);
        crate::unwind::trace(&mut ips, MAX_CAPTURED);
        Self { ips }
    }

    /// The stack of a thread stopped at instruction pointer `ip`, stack pointer `sp`
    /// and frame pointer `bp` (e.g. read from a signal's context), unwound from
    /// `read`, which returns the stack word at an address, or `None` when it cannot
    /// (outside a copy of the stack taken while the thread stood still). The walk
    /// stops where it cannot go on, keeping what it found. Used by integrations
    /// that report other threads' stacks (watchdogs, thread dumps).
    ///
    /// Only `ip` on platforms without the in-process unwinder (other than x86_64
    /// Linux).
    ///
    /// # Examples
    /// ```
    /// # use sentry_lite_core::RawBacktrace;
    /// // Nothing readable: only the stopped instruction.
    /// let bt = RawBacktrace::from_stopped_thread(0x1000, 0x7000, 0, |_| None);
    /// assert_eq!(bt.len(), 1);
    /// ```
    pub fn from_stopped_thread(ip: u64, sp: u64, bp: u64, mut read: impl FnMut(u64) -> Option<u64>) -> Self {
        let mut ips = Vec::with_capacity(48);
        crate::unwind::trace_stopped((ip, sp, bp), &mut read, &mut ips, MAX_CAPTURED);
        Self { ips }
    }

    /// A stack from instruction pointers taken elsewhere (innermost first), e.g. by
    /// `backtrace::Backtrace` in a library that hands out only that.
    ///
    /// # Examples
    /// ```
    /// # use sentry_lite_core::RawBacktrace;
    /// let bt = RawBacktrace::from_ips(vec![0x1000, 0x2000]);
    /// assert_eq!(bt.ips(), &[0x1000, 0x2000]);
    /// ```
    pub fn from_ips(mut ips: Vec<usize>) -> Self {
        ips.truncate(MAX_CAPTURED);
        Self { ips }
    }

    /// The instruction pointers, innermost first.
    pub fn ips(&self) -> &[usize] {
        &self.ips
    }

    /// How many instruction pointers were captured.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// Whether no frame was captured.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// Resolves symbols and builds a Sentry stack trace: oldest frame first, SDK
    /// and std frames trimmed from the top, `in_app` decided by `rules`.
    pub fn resolve(&self, rules: &InAppRules<'_>) -> Option<Stacktrace> {
        let mut frames: Vec<Frame> = Vec::with_capacity(self.ips.len());
        for &ip in &self.ips {
            resolve_ip(ip, &mut frames);
        }
        finish_frames(frames, rules)
    }

    /// [`resolve`](Self::resolve) through `cache`: each instruction pointer is
    /// symbolicated once per cache; the result is the same.
    pub(crate) fn resolve_cached(&self, rules: &InAppRules<'_>, cache: &mut SymbolCache) -> Option<Stacktrace> {
        let kept = self.kept_cached(cache)?;
        // Clone only the frames that are kept.
        let frames = kept
            .into_iter()
            .map(|k| {
                let mut frame = k.frame.clone();
                frame.in_app = Some(rules.is_in_app(k.frame));
                frame
            })
            .collect();
        Some(Stacktrace { frames })
    }

    /// The frames [`resolve_cached`](Self::resolve_cached) keeps, oldest first,
    /// borrowed from `cache` (`in_app` unset); `None` when none is kept.
    pub(crate) fn kept_cached<'c>(&self, cache: &'c mut SymbolCache) -> Option<Vec<KeptFrame<'c>>> {
        cache.fill(&self.ips);
        let cache = &*cache;
        let mut frames: Vec<KeptFrame<'c>> = Vec::with_capacity(self.ips.len() + self.ips.len() / 2);
        for &ip in &self.ips {
            let resolved = cache.frames.get(&ip).into_iter().flat_map(|f| f.iter());
            frames.extend(resolved.enumerate().map(|(inline, frame)| KeptFrame { ip, inline, frame }));
        }
        let (start, end) = kept_range(frames.iter().map(|k| k.frame))?;
        frames.truncate(end);
        frames.drain(..start);
        frames.reverse();
        Some(trim_frames(frames))
    }
}

/// A frame kept by [`RawBacktrace::kept_cached`]: the `inline`-th frame (innermost
/// first) that instruction pointer `ip` resolves to. Symbolication is
/// deterministic, so `(ip, inline)` names the same frame for the life of the process.
pub(crate) struct KeptFrame<'c> {
    pub(crate) ip: usize,
    pub(crate) inline: usize,
    pub(crate) frame: &'c Frame,
}

/// The range of `frames` (innermost first) left after trimming the capture
/// machinery on top and the runtime's start-up frames at the bottom; `None` when
/// nothing is left.
fn kept_range<'a>(
    frames: impl ExactSizeIterator<Item = &'a Frame> + DoubleEndedIterator + Clone,
) -> Option<(usize, usize)> {
    // Innermost first here: drop the capture machinery on top. It is interleaved
    // with std/core/tokio helper frames (`Option::map`, `LocalKey::try_with`), so cut
    // after the outermost SDK frame of the leading library-only run. Between the
    // tracing layer and the `error!` that called it lies tracing's dispatch: cut
    // that too, so the crashing frame is the user's.
    let mut cut = 0;
    for (i, f) in frames.clone().enumerate() {
        if is_capture_frame(f) || is_dispatch_frame(f) {
            cut = i + 1;
        } else if !is_library_frame(f) {
            break;
        }
    }
    // Drop the runtime's start-up frames at the bottom.
    let startup = frames.clone().rev().take_while(|f| is_startup_frame(f)).count();
    let end = frames.len() - startup;
    (cut < end).then_some((cut, end))
}

/// Trims capture and start-up frames from resolved frames (innermost first),
/// orders them oldest first and decides `in_app`.
fn finish_frames(mut frames: Vec<Frame>, rules: &InAppRules<'_>) -> Option<Stacktrace> {
    let (start, end) = kept_range(frames.iter())?;
    frames.truncate(end);
    frames.drain(..start);
    frames.reverse();
    for frame in &mut frames {
        frame.in_app = Some(rules.is_in_app(frame));
    }
    Some(Stacktrace { frames: trim_frames(frames) })
}

/// Keeps the oldest and newest frames when a stack is deeper than Relay accepts.
fn trim_frames<T>(mut frames: Vec<T>) -> Vec<T> {
    if frames.len() > MAX_FRAMES {
        let keep_tail = MAX_FRAMES / 2;
        let keep_head = MAX_FRAMES - keep_tail;
        let tail_start = frames.len() - keep_tail;
        frames.drain(keep_head..tail_start);
    }
    frames
}

fn frame_from_symbol(ip: usize, symbol: &backtrace::Symbol) -> Frame {
    // No `symbol_addr`: `Symbol::addr` is the instruction's address relative to
    // its object, not the function's start that Sentry expects there.
    let mut frame = Frame { instruction_addr: Some(format!("{ip:#x}")), ..Frame::default() };
    if let Some(name) = symbol.name() {
        // `{:#}` demangles without the hash suffix.
        let demangled = format!("{name:#}");
        let (module, function) = split_function(&demangled);
        frame.module = module;
        frame.function = Some(function);
    }
    if let Some(path) = symbol.filename() {
        // Non-UTF-8 paths are rendered lossily rather than dropped.
        let abs = path.to_string_lossy().into_owned();
        frame.filename = path.file_name().map(|f| f.to_string_lossy().into_owned());
        frame.abs_path = Some(abs);
    }
    frame.lineno = symbol.lineno();
    frame.colno = symbol.colno();
    frame
}

/// Splits `a::b::c::func` into module `a::b::c` and the full function name,
/// leaving generic arguments and `<impl …>` blocks intact.
fn split_function(name: &str) -> (Option<String>, String) {
    (module_of(name), name.to_owned())
}

/// The module path of a demangled function name, when it has one.
fn module_of(name: &str) -> Option<String> {
    // `<a::Type>::method` (an inherent impl) is `a::Type::method`; `<T as Trait>::f`
    // and other qualified forms have no single module.
    if let Some(rest) = name.strip_prefix('<') {
        let close = matching_angle(rest)?;
        let inner = &rest[..close];
        if inner.contains(' ') || inner.starts_with(['&', '*', '[', '(']) {
            return None;
        }
        return module_of(&format!("{inner}{}", &rest[close + 1..]));
    }
    let mut depth = 0i32;
    // The `::` before the function's own name: separators followed by generic
    // arguments (`::<T>`) or a closure (`::{closure#0}`) do not start a new path
    // item, so `std::panic::catch_unwind::<F, R>` lives in `std::panic`.
    let mut last_sep = None;
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth -= 1,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                if !matches!(bytes.get(i + 2), Some(b'<' | b'{')) {
                    last_sep = Some(i);
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    last_sep.map(|i| name[..i].to_owned()).filter(|m| !m.is_empty() && !m.contains(' '))
}

/// Index in `s` of the `>` closing a `<` that preceded `s`.
fn matching_angle(s: &str) -> Option<usize> {
    let mut depth = 1u32;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'<' => depth += 1,
            b'>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

const CAPTURE_PREFIXES: &[&str] = &[
    "backtrace::",
    "sentry_lite_core::",
    "sentry_lite_panic::",
    "sentry_lite_tracing::",
    "sentry_lite_axum::",
    "sentry_lite_watchdog::",
    "std::panicking",
    "std::panic::",
    "core::panicking",
    "std::sys::backtrace::__rust_end_short_backtrace",
    "std::sys_common::backtrace::__rust_end_short_backtrace",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
    "<alloc::boxed::Box<F,A> as core::ops::function::Fn<Args>>::call",
];

fn function_of(frame: &Frame) -> &str {
    frame.function.as_deref().unwrap_or("")
}

fn is_capture_frame(frame: &Frame) -> bool {
    let f = function_of(frame).trim_start_matches('<');
    CAPTURE_PREFIXES.iter().any(|p| f.starts_with(p.trim_start_matches('<')))
}

/// tracing's event and span dispatch, including the closures its macros expand to
/// in the caller's crate (their source is tracing's `macros.rs`).
fn is_dispatch_frame(frame: &Frame) -> bool {
    let f = function_of(frame).trim_start_matches('<');
    ["tracing::", "tracing_core::", "tracing_subscriber::"].iter().any(|p| f.starts_with(p))
        || frame.abs_path.as_deref().is_some_and(|p| {
            p.contains("/.cargo/registry/")
                && ["/tracing-0.", "/tracing-core-", "/tracing-subscriber-"].iter().any(|c| p.contains(c))
        })
}

fn is_library_frame(frame: &Frame) -> bool {
    let f = function_of(frame).trim_start_matches('<');
    f.is_empty()
        || ["std::", "core::", "alloc::", "tokio::", "parking_lot::", "once_cell::"].iter().any(|p| f.starts_with(p))
}

/// The process's and threads' start-up below the first frame that matters: glibc's
/// entry points, Rust's `lang_start` and thread spawning, and the `catch_unwind`
/// and closure-call shims between them.
fn is_startup_frame(frame: &Frame) -> bool {
    const PREFIXES: &[&str] = &[
        "std::rt::",
        "std::sys::backtrace::__rust_begin_short_backtrace",
        "std::sys::thread::",
        "std::thread::lifecycle::",
        "std::thread::Builder::spawn_unchecked",
        "std::panic::catch_unwind",
        "std::panicking::catch_unwind",
        "std::panicking::try",
        "core::ops::function::FnOnce::call_once",
        "alloc::boxed::Box<dyn core::ops::function::FnOnce",
        "core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce",
    ];
    let f = function_of(frame);
    if f.is_empty() || f == "main" || f == "__rust_try" || is_glibc_entry(f) {
        return true;
    }
    let f = f.trim_start_matches('<');
    PREFIXES.iter().any(|p| f.starts_with(p))
}

/// Crates whose frames are never the application's own.
const NOT_IN_APP: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "tokio::",
    "backtrace::",
    "futures::",
    "futures_util::",
    "futures_core::",
    "hyper::",
    "hyper_util::",
    "tower::",
    "axum::",
    "tracing::",
    "tracing_core::",
    "tracing_subscriber::",
    "sentry_lite_core::",
    "sentry_lite_panic::",
    "sentry_lite_tracing::",
    "sentry_lite_axum::",
    "sentry_lite_watchdog::",
    "__rust",
    "test::",
    "reqwest::",
    "parking_lot::",
];

/// glibc's process and thread entry points (the oldest frames of every stack),
/// which carry no module path: by name, or by glibc's relative source paths.
fn is_libc_frame(name: &str, abs_path: Option<&str>) -> bool {
    if name.contains("::") {
        return false;
    }
    is_glibc_entry(name)
        || abs_path
            .is_some_and(|p| p.starts_with("./") && ["/csu/", "/nptl/", "/sysdeps/"].iter().any(|dir| p.contains(dir)))
}

/// glibc's process and thread entry points, by symbol name.
fn is_glibc_entry(name: &str) -> bool {
    const EXACT: &[&str] = &["_start", "start_thread", "clone", "clone3", "__clone", "__clone3", "__clone_internal"];
    EXACT.contains(&name) || name.starts_with("__libc_start_main") || name.starts_with("__libc_start_call_main")
}

/// Decides which frames are the application's own code.
#[derive(Debug, Clone, Copy)]
pub struct InAppRules<'a> {
    /// Module prefixes forced in.
    pub include: &'a [std::borrow::Cow<'static, str>],
    /// Module prefixes forced out.
    pub exclude: &'a [std::borrow::Cow<'static, str>],
}

impl InAppRules<'_> {
    /// Whether `frame` is in-app: the user's include/exclude lists first, then
    /// std, core, alloc, tokio, backtrace and sentry-lite are out, the rest is in.
    pub fn is_in_app(&self, frame: &Frame) -> bool {
        let name = frame.module.as_deref().or(frame.function.as_deref()).unwrap_or("");
        let name = name.trim_start_matches('<');
        let with_sep = |m: &str| name == m || name.starts_with(&format!("{m}::"));
        if self.include.iter().any(|m| with_sep(m)) {
            return true;
        }
        if self.exclude.iter().any(|m| with_sep(m)) {
            return false;
        }
        if name.is_empty() {
            return false;
        }
        if frame.abs_path.as_deref().is_some_and(|p| p.contains("/.cargo/registry/") || p.contains("/rustc/")) {
            return false;
        }
        if is_libc_frame(name, frame.abs_path.as_deref()) {
            return false;
        }
        !NOT_IN_APP.iter().any(|p| name.starts_with(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str) -> Frame {
        let (module, function) = split_function(function);
        Frame { function: Some(function), module, ..Frame::default() }
    }

    #[test]
    fn splits_module_from_function() {
        assert_eq!(split_function("my_app::db::connect").0.as_deref(), Some("my_app::db"));
        assert_eq!(split_function("<my_app::Thing as core::fmt::Display>::fmt").0.as_deref(), None);
        assert_eq!(split_function("main").0, None);
        // Generic arguments and closures are not path items.
        assert_eq!(split_function("std::panic::catch_unwind::<F, R>").0.as_deref(), Some("std::panic"));
        assert_eq!(split_function("std::rt::lang_start_internal::{closure#0}").0.as_deref(), Some("std::rt"));
        assert_eq!(split_function("my_app::main::{{closure}}").0.as_deref(), Some("my_app"));
        assert_eq!(split_function("my_app::Pool<T>::get").0.as_deref(), Some("my_app::Pool<T>"));
        // Inherent impls in qualified form; trait impls have no single module.
        assert_eq!(
            split_function("<std::sys::thread::unix::Thread>::new::thread_start").0.as_deref(),
            Some("std::sys::thread::unix::Thread::new")
        );
        assert_eq!(split_function("<my_app::Pool<T>>::get").0.as_deref(), Some("my_app::Pool<T>"));
        assert_eq!(split_function("<my_app::A as core::fmt::Display>::fmt").0, None);
        assert_eq!(split_function("<&dyn core::ops::Fn<()>>::call").0, None);
        assert_eq!(split_function("<unclosed::x").0, None);
    }

    #[test]
    fn in_app_rules() {
        let include = ["tokio::custom".into()];
        let exclude = ["my_app::vendored".into()];
        let rules = InAppRules { include: &include, exclude: &exclude };
        assert!(rules.is_in_app(&frame("my_app::db::connect")));
        assert!(!rules.is_in_app(&frame("std::thread::spawn")));
        assert!(!rules.is_in_app(&frame("tokio::runtime::park")));
        assert!(!rules.is_in_app(&frame("sentry_lite_core::api::capture_error")));
        assert!(rules.is_in_app(&frame("tokio::custom::thing")));
        assert!(!rules.is_in_app(&frame("my_app::vendored::x")));
    }

    #[test]
    fn glibc_entry_frames_are_not_in_app() {
        let rules = InAppRules { include: &[], exclude: &[] };
        let with_path = |function: &str, path: &str| Frame {
            function: Some(function.to_owned()),
            abs_path: Some(path.to_owned()),
            ..Frame::default()
        };
        assert!(!rules.is_in_app(&frame("__libc_start_main_impl")));
        assert!(!rules.is_in_app(&frame("start_thread")));
        assert!(!rules.is_in_app(&frame("__clone3")));
        assert!(!rules.is_in_app(&with_path("__libc_start_call_main", "./csu/../sysdeps/nptl/libc_start_call_main.h")));
        assert!(!rules.is_in_app(&with_path("some_glibc_helper", "./nptl/pthread_create.c")));
        // The binary's own `main` and user code with a similar name stay in.
        assert!(rules.is_in_app(&frame("main")));
        assert!(rules.is_in_app(&frame("my_app::start_thread")));
        assert!(rules.is_in_app(&with_path("my_app::run", "./src/csu/run.rs")));
    }

    #[inline(never)]
    fn deep(n: usize) -> RawBacktrace {
        if n == 0 {
            RawBacktrace::capture()
        } else {
            std::hint::black_box(deep(n - 1))
        }
    }

    #[test]
    fn resolved_stack_has_no_capture_frames() {
        let bt = deep(3);
        let st = bt.resolve(&InAppRules { include: &[], exclude: &[] }).unwrap();
        assert!(st.frames.iter().all(|f| !f.function.as_deref().unwrap_or("").starts_with("backtrace::")));
        assert!(st.frames.len() <= MAX_FRAMES);
        // A test thread starts in glibc (`clone3`, `start_thread`) and std's spawn
        // shims: trimmed with the start-up frames.
        assert!(
            st.frames.iter().all(|f| !matches!(f.function.as_deref(), Some("start_thread" | "clone3" | "__clone3"))),
            "{:#?}",
            st.frames
        );
        assert!(st.frames.first().is_some_and(|f| !is_startup_frame(f)), "{:#?}", st.frames);
        assert!(st.frames.iter().all(|f| f.symbol_addr.is_none()));
    }

    #[test]
    fn cached_resolution_matches_and_stays_bounded() {
        let bt = deep(2);
        let rules = InAppRules { include: &[], exclude: &[] };
        let mut cache = SymbolCache::default();
        let plain = bt.resolve(&rules);
        assert_eq!(bt.resolve_cached(&rules, &mut cache), plain);
        let filled = cache.len();
        assert!(filled > 0);
        // A hit returns the same frames and adds nothing.
        assert_eq!(bt.resolve_cached(&rules, &mut cache), plain);
        assert_eq!(cache.len(), filled);
        // A full cache starts over instead of growing.
        let mut out = Vec::new();
        for ip in 1..=SYMBOL_CACHE_CAPACITY + 5 {
            cache.frames.insert(ip, Box::new([]));
        }
        cache.push_frames(usize::MAX - 1, &mut out);
        assert!(cache.len() <= SYMBOL_CACHE_CAPACITY, "{}", cache.len());
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn tracing_dispatch_above_the_caller_is_trimmed() {
        let at = |function: &str, path: &str| Frame { abs_path: Some(path.to_owned()), ..frame(function) };
        // Innermost first, as unwound from the tracing layer's capture.
        let frames = vec![
            frame("sentry_lite_core::api::capture_event"),
            frame("sentry_lite_tracing::layer::SentryLayer::on_event"),
            frame("<tracing_subscriber::layer::layered::Layered<L,S> as tracing_core::subscriber::Subscriber>::event"),
            frame("core::ops::function::Fn::call"),
            frame("tracing_core::dispatcher::Dispatch::event"),
            frame("tracing_core::event::Event::dispatch"),
            at(
                "my_app::pay::{{closure}}",
                "/home/u/.cargo/registry/src/index.crates.io-1/tracing-0.1.41/src/macros.rs",
            ),
            at("my_app::pay", "/src/pay.rs"),
            frame("tracing_core::dispatcher::get_default"),
            frame("main"),
        ];
        let (start, end) = kept_range(frames.iter()).unwrap();
        assert_eq!(frames[start].function.as_deref(), Some("my_app::pay"));
        // Dispatch frames below the caller stay: they are where it was called from.
        assert_eq!(end - start, 2, "{:?}", &frames[start..end]);
    }

    #[test]
    fn process_and_thread_start_up_below_the_first_real_frame_is_trimmed() {
        // Innermost first, as a capture sees them.
        let main_thread = [
            "sentry_lite_core::api::capture_error",
            "my_app::run",
            "my_app::main",
            "core::ops::function::FnOnce::call_once",
            "std::sys::backtrace::__rust_begin_short_backtrace",
            "std::rt::lang_start::{{closure}}",
            "std::panicking::catch_unwind::do_call",
            "__rust_try",
            "std::panic::catch_unwind",
            "std::rt::lang_start_internal",
            "main",
            "__libc_start_call_main",
            "__libc_start_main_impl",
            "_start",
        ];
        assert_eq!(kept_functions(&main_thread), ["my_app::run", "my_app::main"]);

        let spawned = [
            "sentry_lite_core::api::capture_error",
            "my_app::worker",
            "tokio::runtime::blocking::pool::Inner::run",
            "std::sys::backtrace::__rust_begin_short_backtrace",
            "std::thread::lifecycle::spawn_unchecked::{{closure}}::{{closure}}",
            "<core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce<()>>::call_once",
            "std::panicking::catch_unwind::do_call",
            "std::panic::catch_unwind",
            "core::ops::function::FnOnce::call_once{{vtable.shim}}",
            "<alloc::boxed::Box<dyn core::ops::function::FnOnce<(), Output = ()> + core::marker::Send> as core::ops::function::FnOnce<()>>::call_once",
            "<std::sys::thread::unix::Thread>::new::thread_start",
            "start_thread",
            "clone3",
        ];
        assert_eq!(kept_functions(&spawned), ["my_app::worker", "tokio::runtime::blocking::pool::Inner::run"]);
    }

    /// The functions [`kept_range`] keeps of a stack given innermost first.
    fn kept_functions(functions: &[&str]) -> Vec<String> {
        let frames: Vec<Frame> = functions.iter().map(|f| frame(f)).collect();
        let (start, end) = kept_range(frames.iter()).unwrap();
        frames[start..end].iter().filter_map(|f| f.function.clone()).collect()
    }

    #[test]
    fn deep_stacks_keep_both_ends() {
        let frames: Vec<Frame> = (0..200).map(|i| frame(&format!("f{i}"))).collect();
        let kept = trim_frames(frames);
        assert_eq!(kept.len(), MAX_FRAMES);
        assert_eq!(kept[0].function.as_deref(), Some("f0"));
        assert_eq!(kept.last().unwrap().function.as_deref(), Some("f199"));
    }
}
