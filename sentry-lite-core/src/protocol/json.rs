//! Hand-written JSON pieces for the worker's hot serializers (span containers,
//! envelope headers): byte-for-byte what `serde_json` writes, without its
//! per-byte escaping loop for the common strings that need no escape at all.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that JSON must escape (`"`, `\\`, < 0x20),
/// possibly more after the first (enough to know whether there is one).
fn escape_bits(x: u64) -> u64 {
    // `y - 0x01…` borrows into a byte's high bit where the byte of `y` is zero;
    // `x - 0x20…` where the byte of `x` is below 0x20. `!y` / `!x` mask out bytes
    // that had their high bit set already (UTF-8, left as is like serde_json).
    let quote = x ^ (LO * u64::from(b'"'));
    let backslash = x ^ (LO * u64::from(b'\\'));
    ((x.wrapping_sub(LO * 0x20) & !x) | (quote.wrapping_sub(LO) & !quote) | (backslash.wrapping_sub(LO) & !backslash))
        & HI
}

/// 1 for the bytes JSON must escape.
static ESCAPED: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = 1;
        b += 1;
    }
    table[b'"' as usize] = 1;
    table[b'\\' as usize] = 1;
    table
};

fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Whether `s` holds a byte JSON must escape. Eight bytes at a time; the tail is
/// the last eight bytes again (overlapping is harmless).
fn needs_escape(s: &[u8]) -> bool {
    let n = s.len();
    if n < 8 {
        // Branch-free over the few bytes: OR of a table lookup per byte.
        return s.iter().fold(0, |acc, &b| acc | ESCAPED[usize::from(b)]) != 0;
    }
    let mut bits = 0;
    let mut at = 0;
    while at + 8 <= n {
        bits |= escape_bits(word(s, at));
        at += 8;
    }
    if at < n {
        bits |= escape_bits(word(s, n - 8));
    }
    bits != 0
}

/// Writes `s` as a JSON string (quoted, escaped like `serde_json`).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Rare: let serde_json pick the escapes. Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Writes `"key":` for a key.
pub(crate) fn write_key(out: &mut Vec<u8>, key: &str) {
    write_str(out, key);
    out.push(b':');
}

/// Writes `n` in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes `v` as lowercase hex with `digits` digits, quoted (trace, span and event ids).
pub(crate) fn write_hex(out: &mut Vec<u8>, v: u128, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = digits.min(32);
    let mut buf = [b'"'; 34];
    let mut v = v;
    // Lowest digit last; two digits per step.
    let mut i = digits;
    while i >= 2 {
        let byte = (v & 0xff) as usize;
        buf[i] = HEX[byte & 0xf];
        buf[i - 1] = HEX[byte >> 4];
        v >>= 8;
        i -= 2;
    }
    if i == 1 {
        buf[1] = HEX[(v & 0xf) as usize];
    }
    buf[digits + 1] = b'"';
    out.extend_from_slice(&buf[..digits + 2]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_json() {
        let samples = [
            "",
            "a",
            "sentry.environment",
            "GET /users/{id}",
            "quote\"inside a long enough string",
            "back\\slash",
            "tab\there",
            "0123456\n",
            "01234567\u{1f}",
            "\u{7f} del is not escaped",
            "ünïcödé → ✓ and more text",
            "exactly8",
            "exactly8\"",
        ];
        for s in samples {
            let mut ours = Vec::new();
            write_str(&mut ours, s);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
        // Every byte value in every position of a word.
        for b in 0u8..0x80 {
            for pos in 0..9 {
                let mut s = "x".repeat(9);
                s.replace_range(pos..=pos, std::str::from_utf8(&[b]).unwrap());
                let mut ours = Vec::new();
                write_str(&mut ours, &s);
                assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&s).unwrap());
            }
        }
    }

    #[test]
    fn decimal() {
        for n in [0, 7, 10, 1234, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn hex_ids() {
        let mut out = Vec::new();
        write_hex(&mut out, 0xab, 16);
        assert_eq!(out, b"\"00000000000000ab\"");
        out.clear();
        write_hex(&mut out, u128::MAX, 32);
        assert_eq!(out, format!("\"{}\"", "f".repeat(32)).as_bytes());
        for (v, digits) in
            [(0x0123_4567_89ab_cdef_u128, 16), (0xabc, 3), (0x1234_5678_9abc_def0_1122_3344_5566_7788, 32)]
        {
            out.clear();
            write_hex(&mut out, v, digits);
            assert_eq!(out, format!("\"{v:0digits$x}\"").as_bytes());
        }
    }
}
