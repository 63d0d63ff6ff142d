//! Stopping another thread for a moment to read its stack.
//!
//! The capturing thread sends the target a real-time signal. The handler, on the
//! target, does only async-signal-safe things: it reads the interrupted registers
//! from its `ucontext`, publishes them through atomics and waits (bounded, with
//! `nanosleep`) until the capturer says it is done. Meanwhile the capturer copies
//! the target's stack from `sp` upwards by reading `/proc/self/mem`, which returns
//! an error for unmapped memory instead of faulting, into a buffer allocated before
//! the signal was sent. The unwinding itself then runs on the capturer, on the copy
//! (`RawBacktrace::from_stopped_thread`). So the signal path runs no unwinder, takes
//! no lock and allocates nothing, and the capturer takes no lock and allocates
//! nothing while the target waits (a target interrupted inside `malloc` cannot block
//! it).
//!
//! Every wait is bounded: a target that does not answer (the signal is blocked, the
//! thread is gone) or a handler that gave up waiting yields no stack, never a wrong
//! one.
//!
//! This is the crate's only module allowed `unsafe`: installing a signal handler
//! (`sigaction`), sending a signal to one thread (`tgkill`), and reading the
//! interrupted registers from the kernel's `ucontext` need FFI and raw pointers.
//! Each block states why it is sound.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sentry_lite_core::RawBacktrace;

/// How long the capturer waits for the handler to answer.
const ANSWER_WAIT: Duration = Duration::from_millis(100);
/// How long a handler keeps its thread stopped at most.
const HOLD_NS: i64 = 200_000_000;
/// Bytes of stack copied from `sp` up: the live part of a deep stack of a few
/// hundred frames.
const STACK_COPY: usize = 512 * 1024;

// The request word: a sequence number (all but the low two bits) and a phase.
const PHASE_MASK: u64 = 3;
const REQUESTED: u64 = 1;
const CAPTURED: u64 = 2;
const RELEASED: u64 = 3;

static STATE: AtomicU64 = AtomicU64::new(0);
static TARGET: AtomicI32 = AtomicI32::new(0);
static IP: AtomicU64 = AtomicU64::new(0);
static SP: AtomicU64 = AtomicU64::new(0);
static BP: AtomicU64 = AtomicU64::new(0);

/// One capture at a time; holds the buffers so none is allocated mid-capture.
static CAPTURER: Mutex<Option<Capturer>> = Mutex::new(None);

/// The installed signal, or why there is none.
static SIGNAL: OnceLock<Option<libc::c_int>> = OnceLock::new();

struct Capturer {
    mem: File,
    stack: Vec<u8>,
    sequence: u64,
}

/// A stopped thread's registers and the stack copied while it stood still.
pub(crate) struct Stopped {
    pub(crate) ip: u64,
    pub(crate) sp: u64,
    pub(crate) bp: u64,
    stack: Vec<u8>,
}

impl Stopped {
    /// The stack word at `addr`, if it was copied.
    fn word(&self, addr: u64) -> Option<u64> {
        let offset = usize::try_from(addr.checked_sub(self.sp)?).ok()?;
        let bytes = self.stack.get(offset..offset.checked_add(8)?)?;
        Some(u64::from_ne_bytes(bytes.try_into().ok()?))
    }

    /// Unwinds the copy.
    pub(crate) fn backtrace(&self) -> RawBacktrace {
        RawBacktrace::from_stopped_thread(self.ip, self.sp, self.bp, |a| self.word(a))
    }
}

/// The calling thread's kernel thread id.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Installs the handler once, on the first real-time signal from `SIGRTMIN + 4` up
/// that nobody else handles. `None` when none is free or installing failed.
fn signal() -> Option<libc::c_int> {
    *SIGNAL.get_or_init(|| {
        let (low, high) = (libc::SIGRTMIN() + 4, libc::SIGRTMAX());
        (low..=high).find(|&sig| install(sig))
    })
}

fn install(sig: libc::c_int) -> bool {
    // SAFETY: `sigaction` structs are plain data (all-zero is a valid value); the
    // first call only reads the current disposition into `old`. The second installs
    // `handler`, an `extern "C"` function of the SA_SIGINFO signature, with an empty
    // mask; both pointers are to live locals.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 || old.sa_sigaction != libc::SIG_DFL {
            return false; // someone else's signal
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut()) == 0
    }
}

/// Whether `sig` still runs our handler: sending it after someone reset it to the
/// default action would terminate the process.
fn still_ours(sig: libc::c_int) -> bool {
    // SAFETY: reads the current disposition into a zeroed local; changes nothing.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == handler as *const () as usize
    }
}

/// Monotonic nanoseconds, async-signal-safe.
fn now_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime is async-signal-safe and writes only `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec.saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec)
}

extern "C" fn handler(_sig: libc::c_int, _info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid;
    // saving and restoring it keeps the interrupted code's errno intact.
    let errno = unsafe { *libc::__errno_location() };
    let request = STATE.load(Ordering::Acquire);
    if request & PHASE_MASK == REQUESTED && TARGET.load(Ordering::Acquire) == gettid() && !context.is_null() {
        // SAFETY: with SA_SIGINFO the kernel passes a valid `ucontext_t` as the third
        // argument, alive for the whole handler; only its saved registers are read.
        let (ip, sp, bp) = unsafe { registers(&*context.cast::<libc::ucontext_t>()) };
        IP.store(ip, Ordering::Relaxed);
        SP.store(sp, Ordering::Relaxed);
        BP.store(bp, Ordering::Relaxed);
        let captured = (request & !PHASE_MASK) | CAPTURED;
        if STATE.compare_exchange(request, captured, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // Stand still while the stack is copied, but never for long.
            let deadline = now_ns().saturating_add(HOLD_NS);
            while STATE.load(Ordering::Acquire) == captured {
                if now_ns() > deadline {
                    // Leaving: the capturer sees the phase changed and drops its copy.
                    let _ = STATE.compare_exchange(captured, 0, Ordering::AcqRel, Ordering::Acquire);
                    break;
                }
                let pause = libc::timespec { tv_sec: 0, tv_nsec: 50_000 };
                // SAFETY: nanosleep is async-signal-safe; `pause` is a live local.
                unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
            }
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

#[cfg(target_arch = "x86_64")]
fn registers(context: &libc::ucontext_t) -> (u64, u64, u64) {
    let g = &context.uc_mcontext.gregs;
    (g[libc::REG_RIP as usize] as u64, g[libc::REG_RSP as usize] as u64, g[libc::REG_RBP as usize] as u64)
}

#[cfg(target_arch = "aarch64")]
fn registers(context: &libc::ucontext_t) -> (u64, u64, u64) {
    let m = &context.uc_mcontext;
    (m.pc, m.sp, m.regs[29])
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn registers(_context: &libc::ucontext_t) -> (u64, u64, u64) {
    (0, 0, 0)
}

/// Stops thread `tid` of this process for a moment and copies its registers and
/// stack. `None` when the thread did not answer in time, the copy could not be
/// trusted, or signals are unavailable; never waits much longer than 100 ms
/// (plus the wait for another capture in progress).
pub(crate) fn stop_and_copy(tid: i32) -> Option<Stopped> {
    if tid == gettid() {
        return None; // the caller unwinds itself
    }
    let sig = signal().filter(|&sig| still_ours(sig))?;
    let mut guard = CAPTURER.lock();
    if guard.is_none() {
        let mem = File::open("/proc/self/mem").ok()?;
        *guard = Some(Capturer { mem, stack: vec![0; STACK_COPY], sequence: 0 });
    }
    let capturer = guard.as_mut()?;
    capturer.sequence += 1;
    let request = (capturer.sequence << 2) | REQUESTED;
    TARGET.store(tid, Ordering::Release);
    STATE.store(request, Ordering::Release);
    // SAFETY: tgkill only sends `sig` (whose handler is installed) to thread `tid`
    // of this process; a thread that has exited yields ESRCH.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) } == 0;
    let captured = (request & !PHASE_MASK) | CAPTURED;
    let answered = sent && wait_for(captured);
    if !answered {
        // Withdraw the request; a handler arriving later finds nothing to answer.
        if STATE.compare_exchange(request, 0, Ordering::AcqRel, Ordering::Acquire).is_ok() || !sent {
            STATE.store(0, Ordering::Release);
            return None;
        }
        // It answered just now.
        if STATE.load(Ordering::Acquire) != captured {
            return None;
        }
    }
    let (ip, sp, bp) = (IP.load(Ordering::Relaxed), SP.load(Ordering::Relaxed), BP.load(Ordering::Relaxed));
    // No allocation and no lock from here until the release.
    let copied = read_stack(&capturer.mem, sp, &mut capturer.stack);
    let held =
        STATE.compare_exchange(captured, (request & !PHASE_MASK) | RELEASED, Ordering::AcqRel, Ordering::Acquire);
    if held.is_err() || ip == 0 {
        return None; // the handler left before the copy was complete
    }
    Some(Stopped { ip, sp, bp, stack: capturer.stack[..copied].to_vec() })
}

/// Waits until the state is `captured`, at most [`ANSWER_WAIT`].
fn wait_for(captured: u64) -> bool {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        if STATE.load(Ordering::Acquire) == captured {
            return true;
        }
        if start.elapsed() > ANSWER_WAIT {
            return false;
        }
        spins += 1;
        if spins < 100 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Copies memory from `sp` up into `buf` through `/proc/self/mem` until the first
/// unreadable byte; the number of bytes copied.
fn read_stack(mem: &File, sp: u64, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match mem.read_at(&mut buf[done..], sp + done as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[inline(never)]
    fn spin_here(stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn copies_a_busy_threads_stack_and_lets_it_go_on() {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let worker = std::thread::spawn(move || {
            tx.send(gettid()).unwrap();
            spin_here(&s);
            7
        });
        let tid = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let stopped = stop_and_copy(tid).expect("the thread answered");
        assert!(stopped.stack.len() >= 4096, "{}", stopped.stack.len());
        let bt = stopped.backtrace();
        assert!(bt.len() >= 3, "{:x?}", bt.ips());
        stop.store(true, Ordering::Relaxed);
        assert_eq!(worker.join().unwrap(), 7);
    }

    #[test]
    fn a_thread_that_blocks_the_signal_yields_nothing_and_is_left_alone() {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let worker = std::thread::spawn(move || {
            // SAFETY: a zeroed sigset is valid input to sigfillset, which fills it;
            // pthread_sigmask only reads it and changes this thread's mask.
            unsafe {
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
            }
            tx.send(gettid()).unwrap();
            spin_here(&s);
        });
        let tid = rx.recv().unwrap();
        let start = Instant::now();
        assert!(stop_and_copy(tid).is_none());
        assert!(start.elapsed() < Duration::from_secs(2));
        // The withdrawn request is not answered later, and the next capture works.
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let other = std::thread::spawn(move || {
            tx.send(gettid()).unwrap();
            spin_here(&s);
        });
        assert!(stop_and_copy(rx.recv().unwrap()).is_some());
        stop.store(true, Ordering::Relaxed);
        other.join().unwrap();
    }

    #[test]
    fn a_gone_thread_yields_nothing_quickly() {
        let tid = std::thread::spawn(gettid).join().unwrap();
        let start = Instant::now();
        assert!(stop_and_copy(tid).is_none());
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(stop_and_copy(gettid()).is_none(), "not the caller itself");
    }
}
