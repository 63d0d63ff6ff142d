//! Field visitors: `tracing` values to breadcrumb data, event extras, log and span
//! attributes.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::{self, Write as _};

use sentry_lite_core::protocol::{AttributeValue, Exception};
use sentry_lite_core::Breadcrumb;
use serde_json::Value;
use tracing_core::field::{Field, Visit};

/// One recorded field value, kept typed until we know where it goes.
#[derive(Debug, Clone)]
pub(crate) enum FieldValue {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(String),
}

impl FieldValue {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            FieldValue::I64(v) => Value::from(*v),
            FieldValue::U64(v) => Value::from(*v),
            FieldValue::F64(v) => {
                serde_json::Number::from_f64(*v).map_or_else(|| Value::String(v.to_string()), Value::Number)
            }
            FieldValue::Bool(v) => Value::Bool(*v),
            FieldValue::Str(v) => Value::String(v.clone()),
        }
    }

    pub(crate) fn to_attribute(&self) -> AttributeValue {
        match self {
            FieldValue::I64(v) => AttributeValue::I64(*v),
            FieldValue::U64(v) => AttributeValue::from(*v),
            FieldValue::F64(v) => AttributeValue::F64(*v),
            FieldValue::Bool(v) => AttributeValue::Bool(*v),
            FieldValue::Str(v) => AttributeValue::String(v.clone()),
        }
    }
}

/// Collects an event's fields: the `message`, the other fields in order, and the
/// exception chain of the first error-valued field.
#[derive(Debug, Default)]
pub(crate) struct EventFields {
    pub(crate) message: Option<String>,
    pub(crate) fields: Vec<(&'static str, FieldValue)>,
    pub(crate) exceptions: Option<Vec<Exception>>,
    /// Whether error chains are worth building (only for Sentry events).
    pub(crate) want_exceptions: bool,
}

impl EventFields {
    fn push(&mut self, field: &Field, value: FieldValue) {
        self.fields.push((field.name(), value));
    }
}

/// `Debug` output in one allocation for typical messages (no regrowth from 8 bytes up).
pub(crate) fn debug_string(value: &dyn fmt::Debug) -> String {
    let mut s = String::with_capacity(64);
    let _ = write!(s, "{value:?}");
    s
}

/// `Display` output; unlike `to_string()`, an impl that returns an error gives
/// what it wrote instead of a panic in the host app.
pub(crate) fn display_string(value: &dyn fmt::Display) -> String {
    let mut s = String::with_capacity(64);
    let _ = write!(s, "{value}");
    s
}

impl Visit for EventFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.push(field, FieldValue::Str(value.to_owned()));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if self.want_exceptions && self.exceptions.is_none() {
            self.exceptions = Some(sentry_lite_core::exceptions_from_error(value, None));
        }
        self.push(field, FieldValue::Str(display_string(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(debug_string(value));
        } else {
            self.push(field, FieldValue::Str(debug_string(value)));
        }
    }
}

/// At most this many distinct field names are tracked while refilling a recycled
/// breadcrumb's data in place; events with more fields rebuild the map.
const MAX_TRACKED: usize = 16;

/// Writes an event's fields straight into a (possibly recycled) breadcrumb: the
/// `message` field into its message buffer, the others into its data map, reusing
/// the keys, string values and nodes already there (no intermediate copies).
pub(crate) struct CrumbFields<'a> {
    data: &'a mut BTreeMap<String, Value>,
    message: String,
    has_message: bool,
    seen: [&'static str; MAX_TRACKED],
    seen_len: usize,
    overflow: bool,
}

impl<'a> CrumbFields<'a> {
    /// Records `event`'s fields into `crumb`'s message and data, replacing what was there.
    pub(crate) fn fill(crumb: &'a mut Breadcrumb, event: &tracing_core::Event<'_>) {
        let message = crumb.message.take().unwrap_or_default();
        let mut visitor = CrumbFields {
            data: &mut crumb.data,
            message,
            has_message: false,
            seen: [""; MAX_TRACKED],
            seen_len: 0,
            overflow: false,
        };
        event.record(&mut visitor);
        let CrumbFields { data, message, has_message, seen, seen_len, overflow } = visitor;
        if overflow {
            // Too many fields to tell stale keys apart: start over from an empty map.
            data.clear();
            let mut again = CrumbFields {
                data,
                message: String::new(),
                has_message: false,
                seen: [""; MAX_TRACKED],
                seen_len: 0,
                overflow: true,
            };
            event.record(&mut again);
        } else if data.len() > seen_len {
            // Keys left over from the recycled breadcrumb.
            let seen = &seen[..seen_len];
            data.retain(|k, _| seen.contains(&k.as_str()));
        }
        crumb.message = has_message.then_some(message);
    }

    /// The slot for `field`, its old value kept when the key is already there.
    fn slot(&mut self, field: &Field) -> &mut Value {
        let name = field.name();
        if !self.overflow {
            if self.seen[..self.seen_len].contains(&name) {
                // A repeated name: the last value wins, as with `insert`.
            } else if self.seen_len < MAX_TRACKED {
                self.seen[self.seen_len] = name;
                self.seen_len += 1;
            } else {
                self.overflow = true;
            }
        }
        if !self.data.contains_key(name) {
            self.data.insert(name.to_owned(), Value::Null);
        }
        // Just checked or inserted.
        self.data.get_mut(name).expect("key present")
    }

    fn put(&mut self, field: &Field, value: Value) {
        *self.slot(field) = value;
    }

    fn put_str(&mut self, field: &Field, value: &str) {
        match self.slot(field) {
            Value::String(s) => {
                s.clear();
                s.push_str(value);
            }
            slot => *slot = Value::String(value.to_owned()),
        }
    }

    fn put_display(&mut self, field: &Field, value: &dyn fmt::Display) {
        match self.slot(field) {
            Value::String(s) => {
                s.clear();
                let _ = write!(s, "{value}");
            }
            slot => *slot = Value::String(display_string(value)),
        }
    }

    fn put_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match self.slot(field) {
            Value::String(s) => {
                s.clear();
                let _ = write!(s, "{value:?}");
            }
            slot => *slot = Value::String(debug_string(value)),
        }
    }

    fn set_message(&mut self, write: impl FnOnce(&mut String)) {
        self.message.clear();
        if self.message.capacity() == 0 {
            self.message.reserve(64);
        }
        write(&mut self.message);
        self.has_message = true;
    }
}

impl Visit for CrumbFields<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, FieldValue::F64(value).to_json());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.set_message(|m| m.push_str(value));
        } else {
            self.put_str(field, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.put_display(field, &value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.set_message(|m| {
                let _ = write!(m, "{value:?}");
            });
        } else {
            self.put_debug(field, value);
        }
    }
}

/// Field names with a meaning for spans rather than being attributes.
pub(crate) const NAME_FIELDS: [&str; 2] = ["sentry.name", "otel.name"];
/// Field naming the span's `sentry.op`.
pub(crate) const OP_FIELD: &str = "sentry.op";
