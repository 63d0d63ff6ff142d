//! Field visitors: `tracing` values to breadcrumb data, event extras, log and span
//! attributes.

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
        self.push(field, FieldValue::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(debug_string(value));
        } else {
            self.push(field, FieldValue::Str(debug_string(value)));
        }
    }
}

/// Writes an event's fields straight into a breadcrumb: the `message` field is its
/// message, the others its data (the breadcrumb-only path, no intermediate copies).
pub(crate) struct CrumbFields<'a> {
    pub(crate) crumb: &'a mut Breadcrumb,
}

impl CrumbFields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.crumb.data.insert(field.name().to_owned(), value);
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
            self.crumb.message = Some(value.to_owned());
        } else {
            self.put(field, Value::String(value.to_owned()));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.crumb.message = Some(debug_string(value));
        } else {
            self.put(field, Value::String(debug_string(value)));
        }
    }
}

/// Field names with a meaning for spans rather than being attributes.
pub(crate) const NAME_FIELDS: [&str; 2] = ["sentry.name", "otel.name"];
/// Field naming the span's `sentry.op`.
pub(crate) const OP_FIELD: &str = "sentry.op";
