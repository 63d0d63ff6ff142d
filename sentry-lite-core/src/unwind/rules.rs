//! Compact unwind rules for return addresses, learned from framehop once and then
//! applied without it.
//!
//! framehop's cached path costs ~120 instructions per frame: a lookup that is not
//! inlined, then a general rule interpreter. The rules of almost every frame have
//! one shape: the canonical frame address (CFA) is the stack or frame pointer plus
//! a constant, the return address is the word below the CFA, and the frame pointer
//! is either kept or reloaded from a slot at a constant offset from the stack or
//! frame pointer. Such a rule is learned by letting framehop unwind the address
//! over *symbolic* registers, whose every value tells where it came from, and is
//! then applied here in a few instructions. Anything that does not fit (and
//! anything framehop computes from values rather than from the registers' places)
//! is left to framehop.

/// Where a learned value is based: the stack pointer or the frame pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Base {
    Sp,
    Bp,
}

/// How the caller's frame pointer is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SavedBp {
    /// The callee did not change it.
    Kept,
    /// Saved in the word at this offset from the callee's stack or frame pointer.
    At(Base, i32),
}

/// One frame's unwind rule (see the module docs), packed into a word so that the
/// walk reads one cache entry and decodes it with shifts: bits 0..20 the CFA's
/// offset from its base, bit 20 whether the base is the frame pointer, bits 21..23
/// where the caller's frame pointer is (0 kept, 1 a slot off the stack pointer,
/// 2 off the frame pointer), bits 32..64 that slot's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rule(u64);

const OFFSET_MASK: u64 = WINDOW - 1;
const CFA_FROM_BP: u64 = 1 << 20;
const BP_SHIFT: u32 = 21;
const BP_KEPT: u64 = 0;
const BP_AT_SP: u64 = 1;
const BP_AT_BP: u64 = 2;

/// Registers that matter for unwinding on x86_64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Regs {
    pub(super) ip: u64,
    pub(super) sp: u64,
    pub(super) bp: u64,
}

/// Frames larger than this are left to framehop (and make the symbols unambiguous).
const WINDOW: u64 = 1 << 20;

/// Two sets of symbolic registers: a value read from the stack is its address
/// with `tag` set, so it can never be mistaken for a register or be zero.
const PROBES: [(u64, u64, u64); 2] = [
    (0x0000_1000_0000_0000, 0x0000_1001_0000_0000, 0x4000_0000_0000_0000),
    (0x0000_3000_0000_0000, 0x0000_3002_0000_0000, 0x2000_0000_0000_0000),
];

impl Rule {
    /// The rule that `unwind` (framehop, for one return address) applies, if it
    /// has the compact shape; `None` leaves the address to framehop.
    ///
    /// `unwind` gets registers and a stack reader, and returns what framehop's
    /// `unwind_frame` returns, with the registers updated.
    pub(super) fn learn<E>(
        ra: u64,
        mut unwind: impl FnMut(&mut Regs, &mut dyn FnMut(u64) -> Result<u64, ()>) -> Result<Option<u64>, E>,
    ) -> Option<Rule> {
        let mut learned = None;
        for (sp, bp, tag) in PROBES {
            let mut regs = Regs { ip: ra, sp, bp };
            let mut read = |addr: u64| Ok(addr ^ tag);
            let Ok(Some(next_ip)) = unwind(&mut regs, &mut read) else { return None };
            let from = |value: u64| {
                if value.wrapping_sub(sp) < WINDOW {
                    Some((Base::Sp, value - sp))
                } else if value.wrapping_sub(bp) < WINDOW {
                    Some((Base::Bp, value - bp))
                } else {
                    None
                }
            };
            let (cfa, cfa_offset) = from(regs.sp)?;
            if cfa_offset < 8 || cfa_offset % 8 != 0 || next_ip != (regs.sp - 8) ^ tag || regs.ip != next_ip {
                return None;
            }
            let saved_bp = if regs.bp == bp {
                SavedBp::Kept
            } else {
                // Slots below the base (pushed registers seen from the frame pointer)
                // are as valid as those above it.
                let slot = regs.bp ^ tag;
                let below = |base: u64| base.wrapping_sub(slot) <= WINDOW;
                let (base, offset) = if below(sp) {
                    (Base::Sp, -((sp - slot) as i64))
                } else if below(bp) {
                    (Base::Bp, -((bp - slot) as i64))
                } else {
                    let (base, offset) = from(slot)?;
                    (base, offset as i64)
                };
                SavedBp::At(base, i32::try_from(offset).ok()?)
            };
            let rule = Rule::new(cfa, cfa_offset, saved_bp);
            if learned.is_some_and(|first| first != rule) {
                return None;
            }
            learned = Some(rule);
        }
        learned
    }

    /// `cfa_offset` below [`WINDOW`], as `learn` ensures.
    fn new(cfa: Base, cfa_offset: u64, bp: SavedBp) -> Rule {
        let cfa_bit = if cfa == Base::Bp { CFA_FROM_BP } else { 0 };
        let (kind, slot) = match bp {
            SavedBp::Kept => (BP_KEPT, 0),
            SavedBp::At(Base::Sp, offset) => (BP_AT_SP, offset),
            SavedBp::At(Base::Bp, offset) => (BP_AT_BP, offset),
        };
        Rule((cfa_offset & OFFSET_MASK) | cfa_bit | (kind << BP_SHIFT) | (u64::from(slot as u32) << 32))
    }

    /// Unwinds one frame with the checks framehop makes: `Ok(None)` at the end of
    /// the stack (frame pointer or return address 0), `Err` when a slot cannot be
    /// read or the stack pointer would not move up.
    #[inline]
    pub(super) fn apply(self, regs: &mut Regs, read: impl Fn(u64) -> Result<u64, ()>) -> Result<Option<u64>, ()> {
        let w = self.0;
        let base = if w & CFA_FROM_BP == 0 {
            regs.sp
        } else if regs.bp == 0 {
            return Ok(None);
        } else {
            regs.bp
        };
        let cfa = base.checked_add(w & OFFSET_MASK).ok_or(())?;
        if cfa <= regs.sp {
            return Err(());
        }
        let slot = i64::from((w >> 32) as u32 as i32);
        let bp = match (w >> BP_SHIFT) & 3 {
            BP_KEPT => regs.bp,
            BP_AT_SP => read(regs.sp.checked_add_signed(slot).ok_or(())?)?,
            _ => read(regs.bp.checked_add_signed(slot).ok_or(())?)?,
        };
        let ip = read(cfa - 8)?;
        if ip == 0 {
            return Ok(None);
        }
        *regs = Regs { ip, sp: cfa, bp };
        Ok(Some(ip))
    }
}

/// What the cache knows about an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Known {
    Rule(Rule),
    /// Not compact: ask framehop every time.
    Framehop,
}

/// Sets of two ways, per thread: 16 KiB. Two ways, because a stack of 30-odd
/// frames has an even chance of two return addresses sharing a set, and with one
/// way they would evict each other on every capture.
const SETS: usize = 512;

/// `(return address, word)`: the word is a [`Rule`]'s, `FRAMEHOP`, or 0 for none.
type Entry = (u64, u64);

/// Not a rule's word: a rule's CFA offset is at least 8.
const FRAMEHOP: u64 = 1;

pub(super) struct RuleCache {
    sets: Box<[[Entry; 2]; SETS]>,
}

impl RuleCache {
    pub(super) fn new() -> Self {
        Self { sets: Box::new([[(0, 0); 2]; SETS]) }
    }

    fn set(ra: u64) -> usize {
        // Return addresses of one stack differ in their low bits; fold in the next
        // ones so that call sites a multiple of 4 KiB apart do not always collide.
        ((ra ^ (ra >> 9)) as usize) % SETS
    }

    #[inline]
    pub(super) fn get(&self, ra: u64) -> Option<Known> {
        let [first, second] = &self.sets[Self::set(ra)];
        let word = if first.0 == ra {
            first.1
        } else if second.0 == ra {
            second.1
        } else {
            return None;
        };
        match word {
            0 => None,
            FRAMEHOP => Some(Known::Framehop),
            rule => Some(Known::Rule(Rule(rule))),
        }
    }

    /// Adds `ra` as the set's newest entry; the oldest of the two leaves.
    pub(super) fn insert(&mut self, ra: u64, known: Known) {
        let word = match known {
            Known::Rule(rule) => rule.0,
            Known::Framehop => FRAMEHOP,
        };
        let set = &mut self.sets[Self::set(ra)];
        set[1] = set[0];
        set[0] = (ra, word);
    }

    /// Forgets everything (modules were loaded or unloaded).
    pub(super) fn clear(&mut self) {
        self.sets.fill([(0, 0); 2]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// framehop's x86_64 rule shapes, as its documentation states them (the walker's
    /// tests check the learned rules against libgcc on real stacks).
    #[derive(Clone, Copy, Debug)]
    enum Shape {
        /// (sp, bp) = (sp + 8x, bp)
        OffsetSp(u64),
        /// (sp, bp) = (sp + 8x, *(sp + 8y))
        OffsetSpRestoreBp(u64, i64),
        /// (sp, bp) = (bp + 16, *bp), ending at bp == 0
        FramePointer,
        /// bp popped third of three registers above a 2-word allocation
        PopRegisters,
    }

    fn run(shape: Shape, regs: &mut Regs, read: &mut dyn FnMut(u64) -> Result<u64, ()>) -> Result<Option<u64>, ()> {
        let (sp, bp) = match shape {
            Shape::OffsetSp(x) => (regs.sp + 8 * x, regs.bp),
            Shape::OffsetSpRestoreBp(x, y) => (regs.sp + 8 * x, read(regs.sp.wrapping_add_signed(8 * y))?),
            Shape::FramePointer if regs.bp == 0 => return Ok(None),
            Shape::FramePointer if regs.bp + 16 <= regs.sp => return Err(()),
            Shape::FramePointer => (regs.bp + 16, read(regs.bp)?),
            Shape::PopRegisters => {
                let _ = (read(regs.sp + 16)?, read(regs.sp + 24)?);
                (regs.sp + 40, read(regs.sp + 32)?)
            }
        };
        let ip = read(sp - 8)?;
        if ip == 0 {
            return Ok(None);
        }
        *regs = Regs { ip, sp, bp };
        Ok(Some(ip))
    }

    /// A fake stack of 64 words at `base` whose values are `value(index)`.
    fn stack(base: u64, value: impl Fn(u64) -> u64) -> impl Fn(u64) -> Result<u64, ()> {
        move |addr: u64| {
            if addr % 8 == 0 && (base..base + 64 * 8).contains(&addr) {
                Ok(value((addr - base) / 8))
            } else {
                Err(())
            }
        }
    }

    #[test]
    fn learned_rules_unwind_like_the_rules_they_were_learned_from() {
        let shapes = [
            Shape::OffsetSp(1),
            Shape::OffsetSp(5),
            Shape::OffsetSpRestoreBp(4, 2),
            Shape::OffsetSpRestoreBp(3, -1),
            Shape::FramePointer,
            Shape::PopRegisters,
        ];
        let base = 0x7fff_0000_0000;
        for shape in shapes {
            let learned = Rule::learn(0x5555_0000_1234, |regs, read| run(shape, regs, read))
                .unwrap_or_else(|| panic!("{shape:?} has the compact shape"));
            for (sp_index, bp_index) in [(1, 10), (3, 20), (6, 6), (1, 0), (30, 2), (60, 61)] {
                // Stack words hold return-address-like values, frame pointers and zeros.
                let read = stack(base, |i| if i % 7 == 0 { 0 } else { 0x4000_0000 + i * 8 });
                let (sp, bp) = (base + sp_index * 8, if bp_index == 0 { 0 } else { base + bp_index * 8 });
                let mut theirs_regs = Regs { ip: 0x1111, sp, bp };
                let theirs = run(shape, &mut theirs_regs, &mut |a| read(a));
                let mut ours_regs = Regs { ip: 0x1111, sp, bp };
                let ours = learned.apply(&mut ours_regs, &read);
                let case = format!("{shape:?} at sp {sp_index} bp {bp_index}");
                assert_eq!(ours, theirs, "{case}");
                if matches!(ours, Ok(Some(_))) {
                    assert_eq!(ours_regs, theirs_regs, "{case}");
                }
            }
        }
    }

    #[test]
    fn value_dependent_results_are_left_to_framehop() {
        // A CFA computed from a value read off the stack (stack realignment) is not
        // a register plus a constant.
        let realigned = Rule::learn(0x1000, |regs, read| {
            let cfa = read(regs.bp)?.wrapping_add(16);
            regs.sp = cfa;
            regs.ip = read(cfa - 8)?;
            Ok::<_, ()>(Some(regs.ip))
        });
        assert_eq!(realigned, None);
        // A CFA from another register (unknown here, so zero).
        let other_register = Rule::learn(0x1000, |regs, read| {
            let cfa = 16; // e.g. rbx + 16, with rbx unknown (zero) to the probe
            regs.ip = read(cfa - 8)?;
            regs.sp = cfa;
            Ok::<_, ()>(Some(regs.ip))
        });
        assert_eq!(other_register, None);
        // End of stack, and errors, are not cached as rules.
        assert_eq!(Rule::learn(0x1000, |_, _| Ok::<_, ()>(None)), None);
        assert_eq!(Rule::learn(0x1000, |_, _| Err::<Option<u64>, _>(())), None);
        // A rule that depends on which probe ran is refused.
        let mut calls = 0;
        let flaky = Rule::learn(0x1000, |regs, read| {
            calls += 1;
            regs.sp += if calls == 1 { 8 } else { 16 };
            regs.ip = read(regs.sp - 8)?;
            Ok::<_, ()>(Some(regs.ip))
        });
        assert_eq!(flaky, None);
    }

    #[test]
    fn cache_keeps_one_address_per_slot() {
        let mut cache = RuleCache::new();
        let rule = Known::Rule(Rule::new(Base::Sp, 8, SavedBp::Kept));
        cache.insert(0x4000, rule);
        assert_eq!(cache.get(0x4000), Some(rule));
        assert_eq!(cache.get(0x4008), None, "another address");
        cache.insert(0x5000, Known::Framehop);
        assert_eq!(cache.get(0x5000), Some(Known::Framehop));
        // Three addresses of one set: the two newest stay.
        let same_set: Vec<u64> =
            (1..).map(|i| 0x4000 + i * 8).filter(|a| RuleCache::set(*a) == RuleCache::set(0x4000)).take(2).collect();
        cache.insert(same_set[0], Known::Framehop);
        assert_eq!(cache.get(0x4000), Some(rule), "two ways");
        cache.insert(same_set[1], Known::Framehop);
        assert_eq!(cache.get(0x4000), None, "the oldest left");
        assert_eq!(cache.get(same_set[0]), Some(Known::Framehop));
        assert_eq!(cache.get(same_set[1]), Some(Known::Framehop));
        cache.clear();
        assert_eq!(cache.get(0x4000), None);
    }
}
