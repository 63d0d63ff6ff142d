//! Relay's size limits, applied before sending so data is truncated, never rejected.

use serde_json::Value;

use crate::protocol::Event;

/// `logentry.message` and exception values.
pub(crate) const MAX_MESSAGE_CHARS: usize = 8192;
/// Tag keys.
pub(crate) const MAX_TAG_KEY_CHARS: usize = 200;
/// Tag values.
pub(crate) const MAX_TAG_VALUE_CHARS: usize = 200;
/// Tags kept per event.
pub(crate) const MAX_TAGS: usize = 200;
/// Extra entries kept per event.
pub(crate) const MAX_EXTRA: usize = 200;
/// Breadcrumbs kept per event.
pub(crate) const MAX_BREADCRUMBS: usize = 100;
/// Exception values kept per event.
pub(crate) const MAX_EXCEPTIONS: usize = 64;
/// Strings inside free-form data (extra, contexts, breadcrumb data).
pub(crate) const MAX_DATA_STRING: usize = 8192;
/// Nesting kept inside free-form data.
const MAX_DEPTH: usize = 8;
/// Target for a serialized event; sentry.io rejects more than 1 MB decompressed.
pub(crate) const MAX_EVENT_BYTES: usize = 900 * 1024;

/// The longest prefix of a comma-separated header within `max` bytes that ends on
/// a member boundary: a member cut in the middle (say `86400` cut to `86`) is dropped
/// rather than misread.
pub(crate) fn comma_bounded_prefix(header: &str, max: usize) -> &str {
    if header.len() <= max {
        return header;
    }
    let mut cut = max;
    while cut > 0 && !header.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = header.get(..cut).unwrap_or("");
    if header.as_bytes().get(cut) == Some(&b',') {
        prefix
    } else {
        prefix.rfind(',').map_or("", |i| prefix.get(..i).unwrap_or(""))
    }
}

/// Truncates `s` to at most `max` characters, on a char boundary, marking the cut with `…`.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    if let Some((idx, _)) = s.char_indices().nth(max.saturating_sub(1)) {
        s.truncate(idx);
        s.push('…');
    }
}

fn trim_value(v: &mut Value, depth: usize) {
    match v {
        Value::String(s) => truncate(s, MAX_DATA_STRING),
        Value::Array(a) => {
            if depth >= MAX_DEPTH {
                *v = Value::String("[…]".into());
                return;
            }
            a.truncate(MAX_EXTRA);
            a.iter_mut().for_each(|x| trim_value(x, depth + 1));
        }
        Value::Object(o) => {
            if depth >= MAX_DEPTH {
                *v = Value::String("{…}".into());
                return;
            }
            if o.len() > MAX_EXTRA {
                let keep: Vec<String> = o.keys().take(MAX_EXTRA).cloned().collect();
                o.retain(|k, _| keep.contains(k));
            }
            o.values_mut().for_each(|x| trim_value(x, depth + 1));
        }
        _ => {}
    }
}

/// Applies Relay's limits to an event in place.
pub(crate) fn enforce(event: &mut Event) {
    if let Some(entry) = &mut event.logentry {
        truncate(&mut entry.message, MAX_MESSAGE_CHARS);
        entry.params.truncate(MAX_EXTRA);
    }
    if let Some(exc) = &mut event.exception {
        if exc.values.len() > MAX_EXCEPTIONS {
            // Keep the outermost errors: they are what the user captured.
            let cut = exc.values.len() - MAX_EXCEPTIONS;
            exc.values.drain(..cut);
        }
        for e in &mut exc.values {
            if let Some(v) = &mut e.value {
                truncate(v, MAX_MESSAGE_CHARS);
            }
            // Checked first: `to_mut` copies a borrowed name.
            if e.ty.len() > MAX_TAG_VALUE_CHARS {
                truncate(e.ty.to_mut(), MAX_TAG_VALUE_CHARS);
            }
        }
    }
    if event.tags.len() > MAX_TAGS
        || event.tags.iter().any(|(k, v)| k.len() > MAX_TAG_KEY_CHARS || v.len() > MAX_TAG_VALUE_CHARS)
    {
        let tags = std::mem::take(&mut event.tags);
        event.tags = tags
            .into_iter()
            .take(MAX_TAGS)
            .map(|(mut k, mut v)| {
                truncate(&mut k, MAX_TAG_KEY_CHARS);
                truncate(&mut v, MAX_TAG_VALUE_CHARS);
                (k, v)
            })
            .collect();
    }
    if event.extra.len() > MAX_EXTRA {
        let keep: Vec<String> = event.extra.keys().take(MAX_EXTRA).cloned().collect();
        event.extra.retain(|k, _| keep.contains(k));
    }
    event.extra.values_mut().for_each(|v| trim_value(v, 0));
    if let Some(b) = &mut event.breadcrumbs {
        while b.values.len() > MAX_BREADCRUMBS {
            b.values.pop_front();
        }
        for crumb in &mut b.values {
            if let Some(m) = &mut crumb.message {
                truncate(m, MAX_MESSAGE_CHARS);
            }
            crumb.data.values_mut().for_each(|v| trim_value(v, 0));
        }
    }
    for ctx in event.contexts.values_mut() {
        if let crate::protocol::Context::Other(map) = ctx {
            map.values_mut().for_each(|v| trim_value(v, 0));
        }
    }
    if let Some(t) = &mut event.transaction {
        truncate(t, MAX_TAG_VALUE_CHARS);
    }
}

/// Last resort when an event is still too large: shed the bulkiest optional data.
pub(crate) fn shrink(event: &mut Event) {
    event.breadcrumbs = None;
    event.extra.clear();
    if let Some(req) = &mut event.request {
        req.data = None;
    }
    if let Some(exc) = &mut event.exception {
        for e in &mut exc.values {
            if let Some(v) = &mut e.value {
                truncate(v, 1024);
            }
        }
    }
    event.spans.truncate(100);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        let mut s = "é".repeat(10);
        truncate(&mut s, 4);
        assert_eq!(s, "ééé…");
    }

    #[test]
    fn huge_message_and_many_tags_are_cut() {
        let mut e = Event::new();
        e.set_message("x".repeat(10 * 1024 * 1024));
        for i in 0..100_000 {
            e.tags.insert(format!("k{i}"), "v".repeat(300));
        }
        enforce(&mut e);
        assert!(e.logentry.as_ref().unwrap().message.chars().count() <= MAX_MESSAGE_CHARS);
        assert_eq!(e.tags.len(), MAX_TAGS);
        assert!(e.tags.values().all(|v| v.chars().count() <= MAX_TAG_VALUE_CHARS));
    }
}
