//! Default contexts describing the process: os, rust runtime, device arch.

use std::collections::BTreeMap;

use crate::protocol::{Context, Contexts};

/// Contexts computed once per client.
pub(crate) fn default_contexts() -> Contexts {
    let mut contexts = BTreeMap::new();
    let (os_name, os_version, kernel) = os_info();
    let mut os = vec![("name", os_name)];
    if let Some(v) = os_version {
        os.push(("version", v));
    }
    if let Some(k) = kernel {
        os.push(("kernel_version", k));
    }
    contexts.insert("os".to_owned(), Context::other(os));
    contexts.insert(
        "runtime".to_owned(),
        Context::other([
            ("type", "runtime"),
            ("name", "rustc"),
            ("version", option_env!("SENTRY_LITE_RUSTC_VERSION").unwrap_or("unknown")),
        ]),
    );
    contexts.insert(
        "device".to_owned(),
        Context::other([
            ("type", "device".to_owned()),
            ("arch", std::env::consts::ARCH.to_owned()),
            ("family", std::env::consts::FAMILY.to_owned()),
        ]),
    );
    contexts
}

/// Name and version of the OS; on Linux from `/etc/os-release` and the kernel release.
fn os_info() -> (String, Option<String>, Option<String>) {
    let name = match std::env::consts::OS {
        "macos" => "macOS".to_owned(),
        "windows" => "Windows".to_owned(),
        "linux" => "Linux".to_owned(),
        other => other.to_owned(),
    };
    if std::env::consts::OS != "linux" {
        return (name, None, None);
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned());
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        release.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(|v| v.trim_matches('"').to_owned()))
    };
    let version = field("VERSION_ID").or_else(|| kernel.clone());
    let name = field("NAME").unwrap_or(name);
    (name, version, kernel)
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_os_rust_and_device() {
        let c = super::default_contexts();
        assert!(c.contains_key("os") && c.contains_key("runtime") && c.contains_key("device"));
    }
}
