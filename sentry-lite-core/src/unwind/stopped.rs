//! Unwinding another thread's stack from a copy: the thread was stopped (e.g. in a
//! signal handler) at the registers given, and its stack words are read through a
//! caller's function (typically from a buffer copied while it was stopped), so the
//! walk never touches live memory of another thread.

use std::sync::{Arc, Mutex};

use framehop::{FrameAddress, UnwindRegsNative, Unwinder as _};

use super::modules::{current_generation, Cache, ModuleSet};

/// The modules as last read for a stopped-thread walk (rare: watchdog reports).
static MODULES: Mutex<Option<Arc<ModuleSet>>> = Mutex::new(None);

/// The modules matching the loader's current generation.
fn modules() -> Option<Arc<ModuleSet>> {
    let generation = current_generation()?;
    let mut kept = MODULES.lock().ok()?;
    if let Some(m) = kept.as_ref().filter(|m| m.generation == generation) {
        return Some(m.clone());
    }
    let m = Arc::new(ModuleSet::load().filter(|m| m.generation == generation)?);
    *kept = Some(m.clone());
    Some(m)
}

/// Appends `ip` and then the return addresses of the stopped frame's callers to
/// `out`, innermost first, at most `max`. Stops quietly where the walk cannot go
/// on (an unreadable word, code outside every module); what was found is kept.
pub(crate) fn trace(
    (ip, sp, bp): (u64, u64, u64),
    read: &mut dyn FnMut(u64) -> Option<u64>,
    out: &mut Vec<usize>,
    max: usize,
) {
    if max == 0 || ip == 0 {
        return;
    }
    out.push(ip as usize);
    let Some(modules) = modules() else { return };
    if modules.code_range(ip).is_empty() {
        return;
    }
    let mut cache = Cache::new();
    let mut regs = UnwindRegsNative::new(ip, sp, bp);
    let mut read = |addr: u64| read(addr).ok_or(());
    let mut address = FrameAddress::from_instruction_pointer(ip);
    let mut pushed = 1;
    while pushed < max {
        let last_sp = regs.sp();
        match modules.unwinder.unwind_frame(address, &mut regs, &mut cache, &mut read) {
            Ok(Some(ra)) if modules.code_range(ra.wrapping_sub(1)).contains(&ra.wrapping_sub(1)) => {
                out.push(ra as usize);
                pushed += 1;
                // A stack that does not grow towards its top is corrupt or a loop.
                if regs.sp() <= last_sp {
                    return;
                }
                match FrameAddress::from_return_address(ra) {
                    Some(a) => address = a,
                    None => return,
                }
            }
            _ => return,
        }
    }
}
