//! Client options: what users configure at `init`.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::integration::Integration;
use crate::protocol::{Breadcrumb, Event, SpanV2};
use crate::trace::propagation::TracePropagationTargets;
use crate::trace::SamplingContext;
use crate::transport::TransportFactory;

/// Called with every event before it is sent; `None` drops it (counted as `before_send`).
pub type BeforeSend = Arc<dyn Fn(Event) -> Option<Event> + Send + Sync>;
/// Called with every breadcrumb before it is recorded; `None` drops it.
pub type BeforeBreadcrumb = Arc<dyn Fn(Breadcrumb) -> Option<Breadcrumb> + Send + Sync>;
/// Called with every finished span before it is buffered. It may change a span but
/// not drop it: dropping would leave holes in the trace tree (use `ignore_spans`).
pub type BeforeSendSpan = Arc<dyn Fn(&mut SpanV2) + Send + Sync>;
/// Chooses the sample rate of a new trace from its sampling context.
pub type TracesSampler = Arc<dyn Fn(&SamplingContext<'_>) -> f64 + Send + Sync>;

/// How spans are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TraceLifecycle {
    /// Finished spans stream out in span v2 batches (Sentry / Relay ≥ 25.11).
    #[default]
    Stream,
    /// Spans of a segment are assembled into one `transaction` event, for
    /// self-hosted Sentry older than 25.11.
    Static,
}

/// A pattern of `ignore_spans`: matches a span's name and/or op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanPattern {
    /// Matches the name; `*` is a wildcard for any run of characters.
    pub name: Option<String>,
    /// Matches the op exactly.
    pub op: Option<String>,
}

impl SpanPattern {
    /// A pattern on the span name (`*` wildcards allowed).
    pub fn name(pattern: impl Into<String>) -> Self {
        Self { name: Some(pattern.into()), op: None }
    }

    /// A pattern on the span op.
    pub fn op(op: impl Into<String>) -> Self {
        Self { name: None, op: Some(op.into()) }
    }

    /// Whether a span with this name and op is ignored.
    pub fn matches(&self, name: &str, op: Option<&str>) -> bool {
        self.name.as_deref().is_none_or(|p| wildcard_match(p, name)) && self.op.as_deref().is_none_or(|p| Some(p) == op)
    }
}

fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Options of a client. Start from [`ClientOptions::new`] or [`ClientOptions::from_env`]
/// and chain the `with_*` setters, or set the public fields.
///
/// # Examples
/// ```
/// use sentry_lite_core::ClientOptions;
/// let options = ClientOptions::new()
///     .with_dsn("https://key@o1.ingest.sentry.io/1")
///     .with_release("my-app@1.2.3")
///     .with_traces_sample_rate(0.2);
/// assert_eq!(options.environment.as_deref(), None);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The DSN; `None` (or empty) disables the SDK. Parsed at `init`.
    pub dsn: Option<String>,
    /// Release, e.g. `my-app@1.2.3`. Defaults to `SENTRY_RELEASE`.
    pub release: Option<Cow<'static, str>>,
    /// Environment; `production` when unset.
    pub environment: Option<Cow<'static, str>>,
    /// Distribution of the release.
    pub dist: Option<Cow<'static, str>>,
    /// Server name; defaults to the host name.
    pub server_name: Option<Cow<'static, str>>,
    /// Share of error events sent, in `[0, 1]`.
    pub sample_rate: f32,
    /// Share of traces recorded, in `[0, 1]`; `None` records no spans but still propagates traces.
    pub traces_sample_rate: Option<f64>,
    /// Chooses a trace's sample rate; wins over `traces_sample_rate`.
    pub traces_sampler: Option<TracesSampler>,
    /// Maximum breadcrumbs kept per scope.
    pub max_breadcrumbs: usize,
    /// Attach the capture site's stack trace to captured errors.
    pub attach_stacktrace: bool,
    /// Send personal data and secrets found in requests. Off by default; what then
    /// leaves the process is listed under "Privacy" in the crate docs.
    pub send_default_pii: bool,
    /// Replace every query-string value of requests with `[Filtered]` (keys are
    /// kept), with or without `send_default_pii`. Off by default, where only the
    /// values of secret-looking keys are filtered (without `send_default_pii`).
    pub scrub_all_query_values: bool,
    /// Module prefixes that are the application's own code.
    pub in_app_include: Vec<Cow<'static, str>>,
    /// Module prefixes that are not the application's own code.
    pub in_app_exclude: Vec<Cow<'static, str>>,
    /// See [`BeforeSend`].
    pub before_send: Option<BeforeSend>,
    /// See [`BeforeBreadcrumb`].
    pub before_breadcrumb: Option<BeforeBreadcrumb>,
    /// See [`BeforeSendSpan`].
    pub before_send_span: Option<BeforeSendSpan>,
    /// Spans matching any pattern are non-recording from their start (and counted as `ignored`).
    pub ignore_spans: Vec<SpanPattern>,
    /// How spans are sent.
    pub trace_lifecycle: TraceLifecycle,
    /// Upper bound of finished spans held by the span buffer.
    pub max_buffered_spans: usize,
    /// Enables structured logs (`log` items).
    pub enable_logs: bool,
    /// Print SDK diagnostics to stderr (never the DSN secret or auth headers).
    pub debug: bool,
    /// How long dropping the init guard may wait to deliver what is queued.
    pub shutdown_timeout: Duration,
    /// Capacity of the queue to the background worker (used between 1 and 2^20).
    pub queue_capacity: usize,
    /// Send `client_report` items counting dropped data.
    pub send_client_reports: bool,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Proxy for http DSNs; defaults to the `HTTP_PROXY` environment variable.
    pub http_proxy: Option<String>,
    /// Proxy for https DSNs; defaults to the `HTTPS_PROXY` environment variable.
    pub https_proxy: Option<String>,
    /// Extra PEM-encoded root certificates to trust.
    pub extra_root_certs: Vec<Vec<u8>>,
    /// Disable TLS certificate validation. Dangerous; only for testing setups.
    pub accept_invalid_certs: bool,
    /// Directory where undeliverable envelopes are spooled and re-sent later; off when `None`.
    pub spool_dir: Option<PathBuf>,
    /// Upper bound on the spool's total size in bytes.
    pub spool_max_bytes: u64,
    /// Upper bound on the number of spooled envelopes.
    pub spool_max_files: usize,
    /// Builds the transport; `None` uses HTTP.
    pub transport: Option<Arc<dyn TransportFactory>>,
    /// Integrations to set up at `init`.
    pub integrations: Vec<Arc<dyn Integration>>,
    /// Which outgoing requests get `sentry-trace` and `baggage`: see
    /// [`TracePropagationTargets`]. Default: every URL.
    pub trace_propagation_targets: TracePropagationTargets,
    /// Also send the W3C `traceparent` header on outgoing requests (to the same
    /// targets). Off by default.
    pub propagate_traceparent: bool,
    /// Continue an incoming trace only when its `sentry-org_id` and this SDK's
    /// organization id are both known and equal. Off by default, where a trace is
    /// refused only when both are known and differ. See [`crate::continue_trace`].
    pub strict_trace_continuation: bool,
    /// This organization's id, for trace continuation and the DSC; overrides the
    /// one read from the DSN host (`o123.ingest.sentry.io`). Set it for self-hosted
    /// Sentry or a local Relay.
    pub org_id: Option<u64>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            dsn: None,
            release: None,
            environment: None,
            dist: None,
            server_name: None,
            sample_rate: 1.0,
            traces_sample_rate: None,
            traces_sampler: None,
            max_breadcrumbs: 100,
            attach_stacktrace: true,
            send_default_pii: false,
            scrub_all_query_values: false,
            in_app_include: Vec::new(),
            in_app_exclude: Vec::new(),
            before_send: None,
            before_breadcrumb: None,
            before_send_span: None,
            ignore_spans: Vec::new(),
            trace_lifecycle: TraceLifecycle::Stream,
            max_buffered_spans: 50_000,
            enable_logs: false,
            debug: false,
            shutdown_timeout: Duration::from_secs(2),
            queue_capacity: 1_000,
            send_client_reports: true,
            request_timeout: Duration::from_secs(30),
            http_proxy: None,
            https_proxy: None,
            extra_root_certs: Vec::new(),
            accept_invalid_certs: false,
            spool_dir: None,
            spool_max_bytes: 64 * 1024 * 1024,
            spool_max_files: 10_000,
            transport: None,
            integrations: Vec::new(),
            trace_propagation_targets: TracePropagationTargets::default(),
            propagate_traceparent: false,
            strict_trace_continuation: false,
            org_id: None,
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

macro_rules! setters {
    ($($(#[$doc:meta])* $fn:ident($field:ident: $ty:ty) $conv:expr;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $fn(mut self, $field: $ty) -> Self {
            self.$field = $conv;
            self
        }
    )*};
}

impl ClientOptions {
    /// Default options: no DSN (disabled), full error sampling, no performance tracing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defaults plus `SENTRY_DSN`, `SENTRY_RELEASE`, `SENTRY_ENVIRONMENT` and
    /// `SENTRY_DEBUG` (`1`/`true`) from the environment, and proxies from
    /// `HTTP_PROXY` / `HTTPS_PROXY`.
    pub fn from_env() -> Self {
        Self {
            dsn: env_var("SENTRY_DSN"),
            release: env_var("SENTRY_RELEASE").map(Cow::Owned),
            environment: env_var("SENTRY_ENVIRONMENT").map(Cow::Owned),
            debug: env_var("SENTRY_DEBUG")
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")),
            http_proxy: env_var("HTTP_PROXY").or_else(|| env_var("http_proxy")),
            https_proxy: env_var("HTTPS_PROXY").or_else(|| env_var("https_proxy")),
            ..Self::default()
        }
    }

    setters! {
        /// Sets the DSN.
        with_dsn(dsn: impl Into<String>) Some(dsn.into());
        /// Sets the release.
        with_release(release: impl Into<Cow<'static, str>>) Some(release.into());
        /// Sets the environment.
        with_environment(environment: impl Into<Cow<'static, str>>) Some(environment.into());
        /// Sets the dist.
        with_dist(dist: impl Into<Cow<'static, str>>) Some(dist.into());
        /// Sets the server name.
        with_server_name(server_name: impl Into<Cow<'static, str>>) Some(server_name.into());
        /// Sets the error sample rate (clamped to `[0, 1]`).
        with_sample_rate(sample_rate: f32) if sample_rate.is_nan() { 0.0 } else { sample_rate.clamp(0.0, 1.0) };
        /// Sets the traces sample rate (clamped to `[0, 1]`).
        with_traces_sample_rate(traces_sample_rate: f64) Some(if traces_sample_rate.is_nan() { 0.0 } else { traces_sample_rate.clamp(0.0, 1.0) });
        /// Sets the breadcrumb limit.
        with_max_breadcrumbs(max_breadcrumbs: usize) max_breadcrumbs;
        /// Turns stack traces on captured errors on or off.
        with_attach_stacktrace(attach_stacktrace: bool) attach_stacktrace;
        /// Allows sending personal data.
        with_send_default_pii(send_default_pii: bool) send_default_pii;
        /// Filters every query-string value.
        with_scrub_all_query_values(scrub_all_query_values: bool) scrub_all_query_values;
        /// Turns SDK diagnostics on or off.
        with_debug(debug: bool) debug;
        /// Sets the shutdown timeout.
        with_shutdown_timeout(shutdown_timeout: Duration) shutdown_timeout;
        /// Sets the worker queue capacity (at least 1).
        with_queue_capacity(queue_capacity: usize) queue_capacity.max(1);
        /// Turns client reports on or off.
        with_send_client_reports(send_client_reports: bool) send_client_reports;
        /// Chooses streamed spans or static transactions.
        with_trace_lifecycle(trace_lifecycle: TraceLifecycle) trace_lifecycle;
        /// Turns structured logs on or off.
        with_enable_logs(enable_logs: bool) enable_logs;
        /// Enables the offline spool in this directory.
        with_spool_dir(spool_dir: impl Into<PathBuf>) Some(spool_dir.into());
        /// Bounds the spool's total size in bytes.
        with_spool_max_bytes(spool_max_bytes: u64) spool_max_bytes;
        /// Bounds the number of spooled envelopes.
        with_spool_max_files(spool_max_files: usize) spool_max_files;
        /// Sets the HTTP request timeout.
        with_request_timeout(request_timeout: Duration) request_timeout;
        /// Sets the URLs that get trace headers.
        with_trace_propagation_targets(trace_propagation_targets: TracePropagationTargets) trace_propagation_targets;
        /// Turns the outgoing W3C `traceparent` header on or off.
        with_propagate_traceparent(propagate_traceparent: bool) propagate_traceparent;
        /// Turns strict trace continuation on or off.
        with_strict_trace_continuation(strict_trace_continuation: bool) strict_trace_continuation;
        /// Sets the organization id.
        with_org_id(org_id: u64) Some(org_id);
    }

    /// Sets `before_send`.
    #[must_use]
    pub fn with_before_send(mut self, f: impl Fn(Event) -> Option<Event> + Send + Sync + 'static) -> Self {
        self.before_send = Some(Arc::new(f));
        self
    }

    /// Sets `before_breadcrumb`.
    #[must_use]
    pub fn with_before_breadcrumb(
        mut self,
        f: impl Fn(Breadcrumb) -> Option<Breadcrumb> + Send + Sync + 'static,
    ) -> Self {
        self.before_breadcrumb = Some(Arc::new(f));
        self
    }

    /// Sets `before_send_span`.
    #[must_use]
    pub fn with_before_send_span(mut self, f: impl Fn(&mut SpanV2) + Send + Sync + 'static) -> Self {
        self.before_send_span = Some(Arc::new(f));
        self
    }

    /// Sets `traces_sampler`.
    #[must_use]
    pub fn with_traces_sampler(mut self, f: impl Fn(&SamplingContext<'_>) -> f64 + Send + Sync + 'static) -> Self {
        self.traces_sampler = Some(Arc::new(f));
        self
    }

    /// Adds an `ignore_spans` pattern.
    #[must_use]
    pub fn with_ignored_span(mut self, pattern: SpanPattern) -> Self {
        self.ignore_spans.push(pattern);
        self
    }

    /// Adds a module prefix to `in_app_include`.
    #[must_use]
    pub fn with_in_app_include(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.in_app_include.push(prefix.into());
        self
    }

    /// Adds a module prefix to `in_app_exclude`.
    #[must_use]
    pub fn with_in_app_exclude(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.in_app_exclude.push(prefix.into());
        self
    }

    /// Uses a custom transport.
    #[must_use]
    pub fn with_transport(mut self, factory: impl TransportFactory) -> Self {
        self.transport = Some(Arc::new(factory));
        self
    }

    /// Adds an integration.
    #[must_use]
    pub fn with_integration(mut self, integration: impl Integration) -> Self {
        self.integrations.push(Arc::new(integration));
        self
    }

    /// The environment sent with data: the configured one or `production`.
    pub fn effective_environment(&self) -> &str {
        self.environment.as_deref().unwrap_or("production")
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The DSN is shown parsed, which hides its secret key; raw strings are not printed.
        let dsn = self
            .dsn
            .as_deref()
            .map(|d| d.parse::<crate::Dsn>().map(|d| d.to_string()).unwrap_or_else(|_| "<invalid>".into()));
        f.debug_struct("ClientOptions")
            .field("dsn", &dsn)
            .field("release", &self.release)
            .field("environment", &self.environment)
            .field("sample_rate", &self.sample_rate)
            .field("traces_sample_rate", &self.traces_sample_rate)
            .field("send_default_pii", &self.send_default_pii)
            .field("trace_lifecycle", &self.trace_lifecycle)
            .field("debug", &self.debug)
            .field("trace_propagation_targets", &self.trace_propagation_targets)
            .field("propagate_traceparent", &self.propagate_traceparent)
            .field("strict_trace_continuation", &self.strict_trace_continuation)
            .field("org_id", &self.org_id)
            .field("scrub_all_query_values", &self.scrub_all_query_values)
            .field("integrations", &self.integrations.iter().map(|i| i.name()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_names() {
        assert!(SpanPattern::name("GET /health*").matches("GET /healthz", None));
        assert!(SpanPattern::name("*health*").matches("GET /healthz", None));
        assert!(!SpanPattern::name("GET /health").matches("GET /healthz", None));
        assert!(SpanPattern::op("db.query").matches("x", Some("db.query")));
        assert!(!SpanPattern::op("db.query").matches("x", None));
    }

    #[test]
    fn setters_clamp_rates() {
        let o = ClientOptions::new().with_sample_rate(7.0).with_traces_sample_rate(f64::NAN);
        assert_eq!(o.sample_rate, 1.0);
        assert_eq!(o.traces_sample_rate, Some(0.0));
    }

    #[test]
    fn debug_output_hides_dsn_secret() {
        let o = ClientOptions::new().with_dsn("https://pub:verysecret@h/1");
        assert!(!format!("{o:?}").contains("verysecret"));
    }
}
