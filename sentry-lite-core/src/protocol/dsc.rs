use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::TraceId;

/// The dynamic sampling context: sent as `baggage` (with `sentry-` prefixes) and
/// as the envelope `trace` header. Every value is a string on the wire, because
/// Relay fails to parse a DSC whose `sample_rate` is a JSON number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicSamplingContext {
    /// Trace id.
    pub trace_id: TraceId,
    /// Public key of the DSN that started the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Sample rate of the head decision, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<String>,
    /// The trace's random value in `[0, 1)`, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rand: Option<String>,
    /// `"true"` / `"false"`; absent while the decision is deferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<String>,
    /// Release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Organization id (from the DSN host on sentry.io).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Segment name, only when it is a good-quality (non-URL) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Keys this SDK does not know, kept for forwarding.
    #[serde(flatten, default)]
    pub other: BTreeMap<String, String>,
}

impl DynamicSamplingContext {
    /// Writes the same JSON as its `Serialize` (field order, skipped `None`s, the
    /// unknown keys last), without serde's flattening detour through a map.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        use super::json::{write_hex, write_key, write_str};
        out.extend_from_slice(b"{\"trace_id\":");
        write_hex(out, self.trace_id.as_int(), 32);
        // Keys as literals: no escaping scan for them.
        let fields: [(&[u8], &Option<String>); 8] = [
            (b",\"public_key\":", &self.public_key),
            (b",\"sample_rate\":", &self.sample_rate),
            (b",\"sample_rand\":", &self.sample_rand),
            (b",\"sampled\":", &self.sampled),
            (b",\"release\":", &self.release),
            (b",\"environment\":", &self.environment),
            (b",\"org_id\":", &self.org_id),
            (b",\"transaction\":", &self.transaction),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                out.extend_from_slice(key);
                write_str(out, v);
            }
        }
        for (k, v) in &self.other {
            out.push(b',');
            write_key(out, k);
            write_str(out, v);
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_json_matches_serde() {
        let mut dsc = DynamicSamplingContext { trace_id: TraceId::from_int(0x1234_abcd), ..Default::default() };
        let check = |dsc: &DynamicSamplingContext| {
            let mut out = Vec::new();
            dsc.write_json(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(dsc).unwrap());
        };
        check(&dsc);
        dsc.public_key = Some("abc".into());
        dsc.sample_rand = Some("0.123456".into());
        dsc.sampled = Some("true".into());
        dsc.environment = Some("prod\"uction".into());
        dsc.transaction = Some("GET /users/{id}".into());
        check(&dsc);
        dsc.sample_rate = Some("0.5".into());
        dsc.release = Some("app@1.0".into());
        dsc.org_id = Some("17".into());
        dsc.other.insert("replay_id".into(), "r\n1".into());
        dsc.other.insert("a_key".into(), "x".into());
        check(&dsc);
    }
}
