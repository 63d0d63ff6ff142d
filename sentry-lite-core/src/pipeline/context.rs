//! What every job reads on the worker: the client's options and the data fixed at
//! its start, and the handle that counts what is lost.

use std::sync::{Arc, OnceLock};

use crate::protocol::{Contexts, SdkInfo};
use crate::stacktrace::InAppRules;
use crate::worker::ClientReports;
use crate::{ClientOptions, Dsn};

/// Read by jobs on the worker and by the capture path; built once per client.
pub(crate) struct JobContext {
    pub(crate) options: ClientOptions,
    pub(crate) dsn: Option<Dsn>,
    pub(crate) reports: Arc<ClientReports>,
    pub(crate) sdk: SdkInfo,
    pub(crate) contexts: Contexts,
    pub(crate) server_name: Option<String>,
    /// The span v2 attributes every span carries, rendered on first use.
    pub(crate) span_attributes: OnceLock<Vec<u8>>,
}

impl JobContext {
    pub(crate) fn debug(&self, message: &str) {
        if self.options.debug {
            eprintln!("[sentry-lite] {message}");
        }
    }

    /// The organization id: the `org_id` option, else the DSN host's.
    pub(crate) fn org_id(&self) -> Option<u64> {
        self.options.org_id.or_else(|| self.dsn.as_ref().and_then(Dsn::org_id))
    }

    pub(crate) fn in_app_rules(&self) -> InAppRules<'_> {
        InAppRules { include: &self.options.in_app_include, exclude: &self.options.in_app_exclude }
    }
}
