//! The fast path must give exactly the return addresses `backtrace::trace` gives.

use std::hint::black_box;

use super::{fast, trace, trace_slow};

/// Both walks from the same frame: the fast one, then the reference.
#[inline(never)]
fn both() -> (Vec<usize>, Vec<usize>) {
    let mut fast_ips = Vec::new();
    assert!(fast::trace(&mut fast_ips, 1024), "the fast path gave up");
    let mut slow_ips = Vec::new();
    trace_slow(&mut slow_ips, 1024);
    black_box((fast_ips, slow_ips))
}

/// The function `ip` returns into (the outermost when several were inlined there).
fn function_of(ip: usize) -> String {
    let mut name = String::new();
    backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |s| {
        name = s.name().map(|n| format!("{n:#}")).unwrap_or_default();
    });
    name
}

/// Checks the walks of [`both`]: the first fast address returns into `both`, and
/// every address after it (the callers of `both`, out to the thread's start) equals
/// the reference's, which has the same callers under its own innermost frames.
/// Returns the callers' names.
#[track_caller]
fn assert_same((fast_ips, mut slow_ips): (Vec<usize>, Vec<usize>)) -> Vec<String> {
    // libgcc reports the outermost frame (whose return address is undefined, e.g.
    // under `clone3`) as one more frame at address 0; the fast path ends there.
    if slow_ips.last() == Some(&0) {
        slow_ips.pop();
    }
    assert!(fast_ips.len() >= 2, "{fast_ips:x?}");
    assert!(function_of(fast_ips[0]).ends_with("unwind::tests::both"), "{}", function_of(fast_ips[0]));
    let callers = &fast_ips[1..];
    assert!(slow_ips.len() > callers.len(), "fast {fast_ips:x?}\nslow {slow_ips:x?}");
    let slow_callers = &slow_ips[slow_ips.len() - callers.len()..];
    let names = |ips: &[usize]| ips.iter().map(|&ip| function_of(ip)).collect::<Vec<_>>();
    assert_eq!(callers, slow_callers, "\nfast {:#?}\nslow {:#?}", names(&fast_ips), names(&slow_ips));
    // The reference frame just inside the callers also returns into `both`.
    let into_both = slow_ips[slow_ips.len() - callers.len() - 1];
    assert!(function_of(into_both).ends_with("unwind::tests::both"), "{}", function_of(into_both));
    names(callers)
}

#[inline(never)]
fn outer() -> (Vec<usize>, Vec<usize>) {
    black_box(middle(black_box(3)))
}

#[inline(never)]
fn middle(n: u32) -> (Vec<usize>, Vec<usize>) {
    black_box(inlined(n))
}

#[inline(always)]
fn inlined(n: u32) -> (Vec<usize>, Vec<usize>) {
    let r = inner(n);
    black_box(r)
}

#[inline(never)]
fn inner(n: u32) -> (Vec<usize>, Vec<usize>) {
    black_box(n);
    black_box(both())
}

#[test]
fn nested_and_inlined_functions() {
    let names = assert_same(outer());
    let pos = |f: &str| names.iter().position(|n| n.ends_with(f)).unwrap_or_else(|| panic!("{f} in {names:#?}"));
    // `inlined` is inlined into `middle`: its return address resolves to `middle`.
    assert!(pos("tests::inner") < pos("tests::middle"));
    assert!(pos("tests::middle") < pos("tests::outer"));
}

#[test]
fn closures() {
    let captured = black_box(7u32);
    let f = move || {
        black_box(captured);
        black_box(both())
    };
    let g = |h: &dyn Fn() -> (Vec<usize>, Vec<usize>)| black_box(h());
    assert_same(g(&f));
}

#[test]
fn spawned_threads() {
    let handles: Vec<_> = (0..3).map(|_| std::thread::spawn(|| assert_same(outer()))).collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_tasks() {
    async fn step(n: u32) -> (Vec<usize>, Vec<usize>) {
        tokio::task::yield_now().await;
        black_box(n);
        both()
    }
    let tasks: Vec<_> = (0..4).map(|i| tokio::spawn(step(i))).collect();
    for t in tasks {
        assert_same(t.await.unwrap());
    }
    assert_same(step(9).await);
}

#[inline(never)]
fn recurse(n: u32) -> (Vec<usize>, Vec<usize>) {
    if n == 0 {
        both()
    } else {
        black_box(recurse(black_box(n - 1)))
    }
}

#[test]
fn deep_recursion() {
    let (fast_ips, slow_ips) = recurse(400);
    assert!(fast_ips.len() > 400);
    assert_same((fast_ips, slow_ips));
    // Repeated (rules cached now): still the same.
    assert_same(recurse(400));
}

#[test]
fn stops_at_max() {
    let mut ips = Vec::new();
    trace(&mut ips, 3);
    assert_eq!(ips.len(), 3);
    let mut ips = vec![1, 2];
    trace(&mut ips, 3);
    assert_eq!(ips.len(), 5, "appends after what was there");
}

#[test]
fn fallback_gives_the_reference_walk() {
    #[inline(never)]
    fn capture() -> Vec<usize> {
        let mut ips = Vec::new();
        trace(&mut ips, 1024);
        black_box(ips)
    }
    let mut walks = Vec::new();
    for disabled in [true, false] {
        fast::set_disabled(disabled);
        walks.push(capture());
    }
    let (slow, fast_ips) = (&walks[0], &walks[1]);
    let slow = &slow[..slow.len() - usize::from(slow.last() == Some(&0))];
    // The slow walk starts inside backtrace's own frames; the fast one at its return
    // into `trace`.
    assert!(slow.len() >= fast_ips.len());
    let tail = &slow[slow.len() - fast_ips.len()..];
    for (i, (f, t)) in fast_ips.iter().zip(tail).enumerate().skip(1) {
        // Optimized builds may unroll the loop: two call sites in this test.
        let here = |ip: usize| function_of(ip).ends_with("fallback_gives_the_reference_walk");
        assert!(f == t || (here(*f) && here(*t)), "frame {i}: {f:#x} vs {t:#x}");
    }
    assert!(function_of(fast_ips[0]).ends_with("unwind::trace"), "{}", function_of(fast_ips[0]));
    // (`trace` may tail-call `trace_slow`.)
    assert!(function_of(tail[0]).contains("unwind::trace"), "{}", function_of(tail[0]));
}

#[test]
fn modules_loaded_and_unloaded_later() {
    use std::ffi::CString;
    assert_same(outer());
    // A library this test binary does not link.
    let candidates = ["libz.so.1", "libanl.so.1", "libresolv.so.2", "libutil.so.1", "libnss_dns.so.2"];
    let before = super::modules::current_generation();
    let handle = candidates.iter().find_map(|name| {
        let name = CString::new(*name).unwrap();
        // SAFETY: a plain dlopen of a system library; its constructors are libc's.
        let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        (!h.is_null()).then_some(h)
    });
    let Some(handle) = handle else {
        eprintln!("no loadable library found; skipping the dlopen half");
        return;
    };
    assert_ne!(super::modules::current_generation(), before);
    assert_same(outer());
    // SAFETY: the handle from the dlopen above, closed once; nothing of it is in use.
    unsafe { libc::dlclose(handle) };
    assert_same(outer());
}

/// A stopped-thread walk from this frame's registers, reading a copy of the live
/// stack, and the reference walk from the same frame.
#[inline(never)]
fn stopped_and_reference() -> (Vec<usize>, Vec<usize>) {
    let (pc, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers into outputs; touches no memory.
    unsafe {
        std::arch::asm!(
            "lea {pc}, [rip]", "mov {sp}, rsp", "mov {bp}, rbp",
            pc = out(reg) pc, sp = out(reg) sp, bp = out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    // A copy of the stack from `sp` up (this frame stays live while it is taken).
    let top = super::fast::stack_top_for_tests().expect("stack bounds");
    let words: Vec<u64> = (sp..top)
        .step_by(8)
        // SAFETY: 8-aligned addresses in `sp..top` of this thread's stack, below
        // which nothing is written while this frame runs.
        .map(|a| unsafe { std::ptr::read_volatile(a as *const u64) })
        .collect();
    let mut stopped = Vec::new();
    let read = &mut |a: u64| (a >= sp && a % 8 == 0).then(|| words.get(((a - sp) / 8) as usize).copied()).flatten();
    super::trace_stopped((pc, sp, bp), read, &mut stopped, 1024);
    let mut slow = Vec::new();
    trace_slow(&mut slow, 1024);
    black_box((stopped, slow))
}

#[test]
fn stopped_thread_walk_finds_the_same_callers() {
    let (stopped, mut slow) = stopped_and_reference();
    if slow.last() == Some(&0) {
        slow.pop();
    }
    assert!(function_of(stopped[0] + 1).ends_with("stopped_and_reference"), "{}", function_of(stopped[0] + 1));
    let callers = &stopped[1..];
    assert!(callers.len() >= 3, "{stopped:x?}");
    assert_eq!(callers, &slow[slow.len() - callers.len()..]);
}
