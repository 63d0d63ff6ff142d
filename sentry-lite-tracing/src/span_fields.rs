//! Span fields: naming conventions and typed attributes.

use std::error::Error;
use std::fmt::{self, Write as _};

use sentry_lite_core::protocol::AttributeValue;
use sentry_lite_core::{AttributeKey, Span};
use tracing_core::field::{Field, Visit};

use crate::fields::{NAME_FIELDS, OP_FIELD};

/// Finds the `sentry.name` / `otel.name` and `sentry.op` fields before the span starts
/// (the sampler sees the final name). Other fields cost nothing here.
#[derive(Debug, Default)]
pub(crate) struct SpanNaming {
    pub(crate) name: Option<String>,
    pub(crate) op: Option<String>,
}

impl SpanNaming {
    fn set(&mut self, field: &Field, value: String) {
        let name = field.name();
        if name == OP_FIELD {
            self.op = Some(value);
        } else if NAME_FIELDS.contains(&name) {
            self.name = Some(value);
        }
    }
}

pub(crate) fn is_special(name: &str) -> bool {
    name == OP_FIELD || NAME_FIELDS.contains(&name)
}

impl Visit for SpanNaming {
    fn record_str(&mut self, field: &Field, value: &str) {
        if is_special(field.name()) {
            self.set(field, value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if is_special(field.name()) {
            let mut s = String::new();
            let _ = write!(s, "{value:?}");
            self.set(field, s);
        }
    }
}

/// Writes fields onto a recording span as typed attributes; the naming fields rename
/// the span instead.
#[derive(Debug)]
pub(crate) struct SpanAttributes<'a> {
    pub(crate) span: &'a Span,
}

impl SpanAttributes<'_> {
    fn text(&mut self, field: &Field, value: String) {
        let name = field.name();
        if name == OP_FIELD {
            self.span.set_op(&value);
        } else if NAME_FIELDS.contains(&name) {
            self.span.set_name(value);
        } else {
            self.span.set_attribute(name, value);
        }
    }
}

impl Visit for SpanAttributes<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.span.set_attribute(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.span.set_attribute(field.name(), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.span.set_attribute(field.name(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.span.set_attribute(field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_owned());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.text(field, crate::fields::display_string(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.text(field, s);
    }
}

/// Collects the fields of a new root span as initial attributes (the sampler sees
/// them, and they go in with the span in one step); the naming fields are skipped
/// (already read by [`SpanNaming`]).
#[derive(Debug, Default)]
pub(crate) struct AttributeList {
    pub(crate) attributes: Vec<(AttributeKey, AttributeValue)>,
}

impl AttributeList {
    fn put(&mut self, field: &Field, value: AttributeValue) {
        // The field name is `'static`: borrowed, no allocation.
        self.attributes.push((AttributeKey::Borrowed(field.name()), value));
    }
}

impl Visit for AttributeList {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AttributeValue::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, AttributeValue::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AttributeValue::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, AttributeValue::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if !is_special(field.name()) {
            self.put(field, AttributeValue::from(value));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if !is_special(field.name()) {
            self.put(field, AttributeValue::from(crate::fields::display_string(value)));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !is_special(field.name()) {
            self.put(field, AttributeValue::from(crate::fields::debug_string(value)));
        }
    }
}
