//! The loaded modules (executable, shared libraries, vDSO) and their unwind tables,
//! read in place from the process's memory through `dl_iterate_phdr`.

use std::ffi::{c_int, c_void};
use std::ops::{Deref, Range};

use framehop::{ExplicitModuleSectionInfo, MayAllocateDuringUnwind, Module, Unwinder as _};

pub(super) type Unwinder = framehop::UnwinderNative<Mapped, MayAllocateDuringUnwind>;
pub(super) type Cache = framehop::CacheNative<MayAllocateDuringUnwind>;

/// How many modules the loader has ever loaded and unloaded (`dlpi_adds`,
/// `dlpi_subs`): equal counts mean the same modules at the same addresses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Generation {
    adds: u64,
    subs: u64,
}

/// A byte range inside a loaded module's mapped image (its `.eh_frame_hdr` or
/// `.eh_frame`). Holds an address, not a reference: the slice only exists while
/// framehop reads it during an unwind.
#[derive(Default)]
pub(super) struct Mapped {
    start: usize,
    len: usize,
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `start..start + len` was taken from the program headers of a module
        // that was loaded when its `ModuleSet` was built, and lies inside one of its
        // `PT_LOAD` segments (or is its `PT_GNU_EH_FRAME`), which the loader maps
        // whole and read-only. framehop reads a module's tables only to unwind an
        // address inside that module, and `super::trace` only unwinds with a set
        // whose `Generation` equals the loader's current one (nothing unloaded
        // since it was built), taken after every frame on the stack was entered.
        // A module with code on the current stack cannot be unloaded while that
        // code runs, so the mapping outlives the read. This is the same guarantee
        // libgcc's unwinder relies on: it too reads the tables after dropping the
        // loader lock.
        unsafe { std::slice::from_raw_parts(self.start as *const u8, self.len) }
    }
}

// SAFETY: `Mapped` is an address range of read-only, immutable memory (see `deref`);
// reading it from any thread is fine.
unsafe impl Send for Mapped {}
// SAFETY: as above: shared access only ever reads.
unsafe impl Sync for Mapped {}

/// Every loaded module with unwind tables, as one framehop unwinder.
pub(super) struct ModuleSet {
    pub(super) generation: Generation,
    pub(super) unwinder: Unwinder,
    /// Executable segments of all modules, sorted: an address outside them is
    /// not code we can unwind (JIT code, garbage), and the fast path gives up.
    code: Vec<Range<u64>>,
}

impl ModuleSet {
    /// The executable segment holding `addr`; empty when none does.
    pub(super) fn code_range(&self, addr: u64) -> Range<u64> {
        let i = self.code.partition_point(|r| r.start <= addr);
        match i.checked_sub(1).map(|i| &self.code[i]) {
            Some(r) if addr < r.end => r.clone(),
            _ => 0..0,
        }
    }

    /// Reads the loaded modules. `None` when the loader tells nothing usable.
    pub(super) fn load() -> Option<Self> {
        let mut scan = Scan { generation: None, modules: Vec::new(), code: Vec::new() };
        // SAFETY: `collect` matches the callback type dl_iterate_phdr expects and
        // only reads `info` within the `size` it is given; `data` points to `scan`,
        // alive and not otherwise borrowed for the duration of the call.
        unsafe { libc::dl_iterate_phdr(Some(collect), (&raw mut scan).cast()) };
        let generation = scan.generation?;
        let mut unwinder = Unwinder::new();
        for m in scan.modules {
            unwinder.add_module(m);
        }
        scan.code.sort_by_key(|r| r.start);
        Some(Self { generation, unwinder, code: scan.code })
    }
}

/// The loader's current [`Generation`]; cheap: the walk stops at the first module.
pub(super) fn current_generation() -> Option<Generation> {
    let mut generation: Option<Generation> = None;
    // SAFETY: `first_generation` matches the callback type and only reads `info`
    // within `size`; `data` points to `generation`, alive for the whole call.
    unsafe { libc::dl_iterate_phdr(Some(first_generation), (&raw mut generation).cast()) };
    generation
}

/// The generation from a `dl_phdr_info`, when the loader's struct has those fields.
///
/// # Safety
/// `info` must point to a `dl_phdr_info` of `size` readable bytes.
unsafe fn generation_of(info: *const libc::dl_phdr_info, size: usize) -> Option<Generation> {
    let needed = std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs) + std::mem::size_of::<u64>();
    if info.is_null() || size < needed {
        return None;
    }
    // SAFETY: the caller guarantees `size` readable bytes, which cover both fields.
    let info = unsafe { &*info };
    Some(Generation { adds: info.dlpi_adds, subs: info.dlpi_subs })
}

unsafe extern "C" fn first_generation(info: *mut libc::dl_phdr_info, size: usize, data: *mut c_void) -> c_int {
    // SAFETY: dl_iterate_phdr hands a valid `info` of `size` bytes; `data` is the
    // `Option<Generation>` passed by `current_generation`.
    unsafe { *data.cast::<Option<Generation>>() = generation_of(info, size) };
    1 // stop after the first module
}

struct Scan {
    generation: Option<Generation>,
    modules: Vec<Module<Mapped>>,
    code: Vec<Range<u64>>,
}

unsafe extern "C" fn collect(info: *mut libc::dl_phdr_info, size: usize, data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `Scan` passed by `ModuleSet::load`, exclusively ours
    // during the call.
    let scan = unsafe { &mut *data.cast::<Scan>() };
    if scan.generation.is_none() {
        // SAFETY: dl_iterate_phdr hands a valid `info` of `size` bytes.
        scan.generation = unsafe { generation_of(info, size) };
        if scan.generation.is_none() {
            return 1; // an old loader: no way to notice changes, so no fast path
        }
    }
    // SAFETY: as above; the fields read here precede `dlpi_adds`, so `size` covers them.
    let info = unsafe { &*info };
    if info.dlpi_phdr.is_null() {
        return 0;
    }
    // SAFETY: the loader guarantees `dlpi_phnum` program headers at `dlpi_phdr`,
    // mapped for as long as the module is loaded, which it is while we hold the
    // loader lock inside this callback.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    if let Some((module, code)) = read_module(info.dlpi_addr, phdrs) {
        scan.modules.push(module);
        scan.code.extend(code);
    }
    0
}

const PT_LOAD: u32 = 1;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
const PF_X: u32 = 1;

/// The framehop module and executable ranges of one loaded module, from its program
/// headers; `None` when it has no usable `.eh_frame_hdr`.
fn read_module(base: u64, phdrs: &[libc::Elf64_Phdr]) -> Option<(Module<Mapped>, Vec<Range<u64>>)> {
    let loads = segments(base, phdrs, 0);
    let code = segments(base, phdrs, PF_X);
    let hdr_ph = phdrs.iter().find(|p| p.p_type == PT_GNU_EH_FRAME)?;
    let hdr_start = base.checked_add(hdr_ph.p_vaddr)?;
    let hdr_len = hdr_ph.p_memsz;
    // The header must lie inside a loaded segment for us to read it.
    loads.iter().find(|r| r.start <= hdr_start && hdr_start.checked_add(hdr_len).is_some_and(|e| e <= r.end))?;
    // SAFETY: `hdr_start..+hdr_len` is inside a PT_LOAD segment of a module that
    // stays loaded while this callback holds the loader lock.
    let hdr = unsafe { std::slice::from_raw_parts(hdr_start as *const u8, usize::try_from(hdr_len).ok()?) };
    let eh_frame_start = eh_frame_address(hdr, hdr_start)?;
    // `.eh_frame` has no program header of its own: it runs at most to the end of
    // the segment that holds its start.
    let eh_frame_end = loads.iter().find(|r| r.contains(&eh_frame_start))?.end;
    let avma = loads.iter().map(|r| r.start).min()?..loads.iter().map(|r| r.end).max()?;
    let svma = |r: Range<u64>| (r.start - base)..(r.end - base);
    let text = code.first().cloned().map(svma);
    let section_info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: text,
        eh_frame_svma: Some(svma(eh_frame_start..eh_frame_end)),
        eh_frame: Some(Mapped {
            start: usize::try_from(eh_frame_start).ok()?,
            len: usize::try_from(eh_frame_end - eh_frame_start).ok()?,
        }),
        eh_frame_hdr_svma: Some(svma(hdr_start..hdr_start + hdr_len)),
        eh_frame_hdr: Some(Mapped { start: usize::try_from(hdr_start).ok()?, len: usize::try_from(hdr_len).ok()? }),
        ..ExplicitModuleSectionInfo::default()
    };
    Some((Module::new(String::new(), avma, base, section_info), code))
}

/// The address ranges of the `PT_LOAD` segments whose flags include `flags`.
fn segments(base: u64, phdrs: &[libc::Elf64_Phdr], flags: u32) -> Vec<Range<u64>> {
    phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_flags & flags == flags && p.p_memsz > 0)
        .filter_map(|p| {
            let start = base.checked_add(p.p_vaddr)?;
            Some(start..start.checked_add(p.p_memsz)?)
        })
        .collect()
}

/// Decodes `eh_frame_ptr` from an `.eh_frame_hdr` mapped at `hdr_addr`.
fn eh_frame_address(hdr: &[u8], hdr_addr: u64) -> Option<u64> {
    let (&version, rest) = hdr.split_first()?;
    let &encoding = rest.first()?;
    if version != 1 {
        return None;
    }
    let field = hdr.get(4..)?;
    let field_addr = hdr_addr + 4;
    let value = match encoding & 0x0f {
        0x00 | 0x04 => u64::from_le_bytes(field.get(..8)?.try_into().ok()?),
        0x0c => i64::from_le_bytes(field.get(..8)?.try_into().ok()?) as u64,
        0x03 => u64::from(u32::from_le_bytes(field.get(..4)?.try_into().ok()?)),
        0x0b => i64::from(i32::from_le_bytes(field.get(..4)?.try_into().ok()?)) as u64,
        _ => return None,
    };
    match encoding & 0x70 {
        0x00 => Some(value),
        0x10 => Some(field_addr.wrapping_add(value)),
        0x30 => Some(hdr_addr.wrapping_add(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_eh_frame_pointer_encodings() {
        // pcrel | sdata4, the usual one: relative to the field at hdr + 4.
        let hdr = [1, 0x1b, 0x03, 0x3b, 0xf0, 0xff, 0xff, 0xff];
        assert_eq!(eh_frame_address(&hdr, 0x1000), Some(0x1004 - 0x10));
        // absptr | udata8.
        let mut abs = vec![1, 0x04, 0, 0];
        abs.extend_from_slice(&0x4242u64.to_le_bytes());
        assert_eq!(eh_frame_address(&abs, 0x1000), Some(0x4242));
        // datarel | udata4: relative to the header.
        let hdr = [1, 0x33, 0, 0, 0x20, 0, 0, 0];
        assert_eq!(eh_frame_address(&hdr, 0x1000), Some(0x1020));
        // Unknown version, omitted pointer, truncated header.
        assert_eq!(eh_frame_address(&[2, 0x1b, 0, 0, 0, 0, 0, 0], 0), None);
        assert_eq!(eh_frame_address(&[1, 0xff, 0, 0, 0, 0, 0, 0], 0), None);
        assert_eq!(eh_frame_address(&[1, 0x1b, 0, 0, 0], 0), None);
    }

    #[test]
    fn finds_this_binary_and_libc() {
        let set = ModuleSet::load().expect("modules");
        let here = finds_this_binary_and_libc as *const () as usize as u64;
        assert!(set.code_range(here).contains(&here));
        let getpid = libc::getpid as *const () as usize as u64;
        assert!(set.code_range(getpid).contains(&getpid));
        assert!(!set.code_range(here).contains(&getpid), "another module");
        assert!(set.code_range(0).is_empty());
        assert!(set.code_range(&set as *const _ as u64).is_empty(), "a stack address is not code");
        assert_eq!(current_generation(), Some(set.generation));
    }
}
