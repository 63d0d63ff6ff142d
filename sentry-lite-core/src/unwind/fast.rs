//! The framehop fast path: per-thread rule cache and stack bounds, one shared set
//! of modules refreshed when the loader's generation changes.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use framehop::{FrameAddress, UnwindRegsNative, Unwinder as _};

use super::modules::{current_generation, Cache, ModuleSet};
use super::rules::{Known, Regs, Rule, RuleCache};

/// The modules as last read by any thread; threads take it when theirs is stale.
static SHARED: Mutex<Option<Arc<ModuleSet>>> = Mutex::new(None);

thread_local! {
    static STATE: RefCell<Option<ThreadState>> = const { RefCell::new(None) };
    /// Tests force the fallback with this.
    static DISABLED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the fast path may be tried on this thread.
#[inline]
pub(super) fn enabled() -> bool {
    DISABLED.try_with(|d| !d.get()).unwrap_or(false)
}

/// Turns the fast path off (or back on) for the current thread.
#[cfg(test)]
pub(super) fn set_disabled(disabled: bool) {
    DISABLED.with(|d| d.set(disabled));
}

/// Rule caches per thread (8 KiB each).
const CACHES: usize = 4;
/// framehop's slots per cache: the cache picks `address % SLOTS`, we pick the cache
/// from the bits above.
const SLOTS: u64 = 509;

struct ThreadState {
    /// This thread's stack, `None` when it could not be found.
    stack: Option<Range<u64>>,
    modules: Option<Arc<ModuleSet>>,
    /// Unwind rules by address. framehop's cache is direct-mapped (509 slots,
    /// 8 KiB): two return addresses of one stack that share a slot evict each other
    /// on every capture, and each miss re-reads the DWARF (~2,700 instructions).
    /// Spreading addresses over a few caches makes such pairs rare.
    caches: Box<[Cache; CACHES]>,
    /// Compact rules of return addresses, tried before framehop.
    rules: RuleCache,
}

/// Appends return addresses (innermost first, starting at this function's caller)
/// to `out`, at most `max`. `false` when the result cannot be trusted; `out` may
/// then hold a partial walk for the caller to discard.
#[inline(never)]
pub(super) fn trace(out: &mut Vec<usize>, max: usize) -> bool {
    let (pc, sp, bp): (u64, u64, u64);
    // SAFETY: reads the instruction pointer, stack pointer and frame pointer into
    // three output registers; touches no memory, the stack or the flags. It is
    // here, not in a helper, so that this frame stays live (and the stack above
    // `sp` unchanged) for the whole walk.
    unsafe {
        std::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    // A panic inside framehop would be a bug; the host app still gets the slow path.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        STATE
            .try_with(|state| {
                // Re-entered (e.g. from an allocator hook): the slow path is safe.
                let Ok(mut state) = state.try_borrow_mut() else { return false };
                let state = state.get_or_insert_with(ThreadState::new);
                state.walk(pc, sp, bp, out, max)
            })
            .unwrap_or(false)
    }))
    .unwrap_or(false)
}

impl ThreadState {
    fn new() -> Self {
        Self {
            stack: stack_range(),
            modules: None,
            caches: Box::new(std::array::from_fn(|_| Cache::new())),
            rules: RuleCache::new(),
        }
    }

    fn walk(&mut self, pc: u64, sp: u64, bp: u64, out: &mut Vec<usize>, max: usize) -> bool {
        // On another stack (a signal's alternate stack, a coroutine's) the bounds
        // below would be wrong.
        let Some(stack) = self.stack.clone().filter(|s| s.contains(&sp)) else { return false };
        if !self.refresh_modules() {
            return false;
        }
        let (Some(modules), caches, rules) = (self.modules.as_deref(), &mut self.caches, &mut self.rules) else {
            return false;
        };
        // Only the live part of this thread's stack, from this frame up, 8-aligned.
        let top = stack.end;
        let read = |addr: u64| read_stack_word(addr, sp..top);
        // framehop, for `trace` itself and for addresses without a compact rule.
        let mut framehop =
            |address: FrameAddress, regs: &mut Regs, mut read: &mut dyn FnMut(u64) -> Result<u64, ()>| {
                let slot_group = (address.address_for_lookup() / SLOTS) as usize % CACHES;
                let mut native = UnwindRegsNative::new(regs.ip, regs.sp, regs.bp);
                let result = modules.unwinder.unwind_frame(address, &mut native, &mut caches[slot_group], &mut read);
                *regs = Regs { ip: native.ip(), sp: native.sp(), bp: native.bp() };
                result
            };
        let mut regs = Regs { ip: pc, sp, bp };
        let mut next = framehop(FrameAddress::from_instruction_pointer(pc), &mut regs, &mut |a| read(a));
        let mut code = modules.code_range(pc);
        let start = out.len();
        loop {
            let ra = match next {
                Ok(Some(ra)) => ra,
                Ok(None) => return true,
                Err(_) => return false,
            };
            // A cached address was in known code when it was learned, and the cache
            // is cleared whenever the modules change.
            let known = match rules.get(ra) {
                Some(known) => known,
                None => {
                    // Unknown code (JIT, a corrupt frame): libgcc decides there.
                    if !code.contains(&(ra - 1)) {
                        code = modules.code_range(ra - 1);
                        if code.is_empty() {
                            return false;
                        }
                    }
                    let Some(address) = FrameAddress::from_return_address(ra) else { return false };
                    let known = Rule::learn(ra, |regs, read| framehop(address, regs, read))
                        .map_or(Known::Framehop, Known::Rule);
                    rules.insert(ra, known);
                    known
                }
            };
            if out.len() - start >= max {
                return true;
            }
            out.push(ra as usize);
            // framehop's Result type for both arms: mapping its errors to `()`
            // instead measured ~430 instructions per walk dearer.
            next = match known {
                Known::Rule(rule) => rule.apply(&mut regs, read).map_err(|()| framehop::Error::IntegerOverflow),
                Known::Framehop => match FrameAddress::from_return_address(ra) {
                    Some(address) => framehop(address, &mut regs, &mut |a| read(a)),
                    None => return false,
                },
            };
        }
    }

    /// Makes `modules` match the loader's current modules; `false` if it cannot.
    fn refresh_modules(&mut self) -> bool {
        let Some(generation) = current_generation() else { return false };
        if self.modules.as_ref().is_some_and(|m| m.generation == generation) {
            return true;
        }
        // Another thread may have read them already; never wait for it.
        let shared = SHARED.try_lock().ok().and_then(|s| s.clone()).filter(|m| m.generation == generation);
        let modules = match shared {
            Some(m) => m,
            None => {
                let Some(m) = ModuleSet::load().filter(|m| m.generation == generation) else {
                    return false; // changed again meanwhile: the next capture reloads
                };
                let m = Arc::new(m);
                if let Ok(mut shared) = SHARED.try_lock() {
                    *shared = Some(m.clone());
                }
                m
            }
        };
        self.modules = Some(modules);
        // Rules of unloaded modules must not be reused at their old addresses.
        self.caches.iter_mut().for_each(|c| *c = Cache::new());
        self.rules.clear();
        true
    }
}

/// Reads the word at `addr` if it is 8-aligned and inside `live`.
///
/// `live` must be `sp..top` of the current thread's stack, with `sp` taken in a
/// frame that is still running (see `trace`).
fn read_stack_word(addr: u64, live: Range<u64>) -> Result<u64, ()> {
    if addr % 8 != 0 || addr < live.start || addr.checked_add(8).is_none_or(|end| end > live.end) {
        return Err(());
    }
    // SAFETY: `addr` is 8-aligned and in `sp..top`, the part of this thread's stack
    // holding the running `trace` frame and its callers: mapped, readable, and not
    // written while `trace` runs (its frame is the innermost of them).
    Ok(unsafe { std::ptr::read_volatile(addr as *const u64) })
}

/// The end of the current thread's stack.
#[cfg(test)]
pub(super) fn stack_top_for_tests() -> Option<u64> {
    stack_range().map(|r| r.end)
}

/// The current thread's stack range.
fn stack_range() -> Option<Range<u64>> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_getattr_np initializes `attr` for the calling thread when it
    // returns 0; only then is it read, and it is destroyed exactly once.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut addr = std::ptr::null_mut();
        let mut size = 0;
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if rc != 0 || addr.is_null() {
            return None;
        }
        let low = addr as u64;
        Some(low..low.checked_add(size as u64)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_stacks_it_cannot_bound() {
        let mut state = ThreadState::new();
        let stack = state.stack.clone().expect("this thread's stack");
        let local = std::hint::black_box(0u64);
        let sp = &local as *const u64 as u64;
        assert!(stack.contains(&sp));
        let pc = refuses_stacks_it_cannot_bound as *const () as u64;
        let mut out = Vec::new();
        // A stack pointer off this thread's stack (here: the heap).
        let heap = Box::new(0u64);
        assert!(!state.walk(pc, &*heap as *const u64 as u64, 0, &mut out, 64));
        // Bounds unknown.
        state.stack = None;
        assert!(!state.walk(pc, sp, 0, &mut out, 64));
    }

    #[test]
    fn return_addresses_of_ordinary_code_get_compact_rules() {
        let mut out = Vec::new();
        assert!(trace(&mut out, 128));
        assert!(out.len() > 5, "{out:?}");
        STATE.with(|state| {
            let state = state.borrow();
            let rules = &state.as_ref().expect("walked").rules;
            let compact = out.iter().filter(|ra| matches!(rules.get(**ra as u64), Some(Known::Rule(_)))).count();
            // Only odd frames (the thread's entry, hand-written assembly) are left to framehop.
            assert!(compact + 3 >= out.len(), "{compact} of {} frames", out.len());
        });
    }

    #[test]
    fn reads_only_aligned_words_inside_the_live_stack() {
        let words = std::hint::black_box([11u64, 22, 33]);
        let base = words.as_ptr() as u64;
        let live = base..base + 24;
        assert_eq!(read_stack_word(base, live.clone()), Ok(11));
        assert_eq!(read_stack_word(base + 16, live.clone()), Ok(33));
        assert_eq!(read_stack_word(base + 4, live.clone()), Err(()), "unaligned");
        assert_eq!(read_stack_word(base - 8, live.clone()), Err(()), "below sp");
        assert_eq!(read_stack_word(base + 24, live.clone()), Err(()), "past the top");
        assert_eq!(read_stack_word(u64::MAX - 7, 0..u64::MAX), Err(()), "overflow");
    }
}
