//! Hand-written JSON pieces for the worker's hot serializers (span containers,
//! envelope headers): byte-for-byte what `serde_json` writes, without its
//! per-byte escaping loop for the common strings that need no escape at all.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of the word is zero (exact for "any"; which byte is not needed).
fn has_zero(x: u64) -> bool {
    x.wrapping_sub(LO) & !x & HI != 0
}

/// Whether `s` holds a byte JSON must escape: `"`, `\` or a control byte (< 0x20).
/// Eight bytes at a time; bytes ≥ 0x80 (UTF-8) pass, as `serde_json` leaves them.
fn needs_escape(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // `x - 0x20…` borrows into a byte's high bit only for bytes below 0x20
        // (bytes ≥ 0x80 are masked out by `!x`).
        let control = x.wrapping_sub(LO * 0x20) & !x & HI != 0;
        if control || has_zero(x ^ (LO * u64::from(b'"'))) || has_zero(x ^ (LO * u64::from(b'\\'))) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
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
    let mut buf = [0u8; 34];
    buf[0] = b'"';
    for i in 0..digits {
        let shift = (digits - 1 - i) * 4;
        buf[1 + i] = HEX[((v >> shift) & 0xf) as usize];
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
    }
}
