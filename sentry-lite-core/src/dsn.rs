//! Parsing of Sentry DSNs: `{scheme}://{public_key}[:{secret}]@{host}[:port]{path}/{project_id}`.

use std::fmt;
use std::str::FromStr;

/// A parsed DSN.
///
/// Its `Debug` and `Display` forms never show the secret key.
///
/// # Examples
/// ```
/// let dsn: sentry_lite_core::Dsn = "https://key@o1.ingest.sentry.io/42".parse().unwrap();
/// assert_eq!(dsn.project_id(), "42");
/// assert_eq!(dsn.envelope_url(), "https://o1.ingest.sentry.io/api/42/envelope/");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    scheme: Scheme,
    public_key: String,
    secret_key: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
    project_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// What is wrong with a DSN string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnParseError {
    kind: DsnErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DsnErrorKind {
    Empty,
    MissingScheme,
    UnsupportedScheme(String),
    MissingPublicKey,
    MissingHost,
    InvalidHost(&'static str),
    InvalidPort(String),
    MissingProjectId,
    InvalidProjectId(String),
    InvalidCharacter,
}

impl fmt::Display for DsnParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid DSN: ")?;
        match &self.kind {
            DsnErrorKind::Empty => f.write_str("it is empty"),
            DsnErrorKind::MissingScheme => f.write_str("it has no scheme (expected `https://…`)"),
            DsnErrorKind::UnsupportedScheme(s) => write!(f, "scheme `{s}` is not http or https"),
            DsnErrorKind::MissingPublicKey => f.write_str("the public key before `@` is missing"),
            DsnErrorKind::MissingHost => f.write_str("the host is missing"),
            DsnErrorKind::InvalidHost(why) => write!(f, "the host {why}"),
            DsnErrorKind::InvalidPort(p) => write!(f, "port `{p}` is not a number from 1 to 65535"),
            DsnErrorKind::MissingProjectId => f.write_str("the project id at the end of the path is missing"),
            DsnErrorKind::InvalidProjectId(p) => write!(f, "project id `{p}` is not numeric"),
            DsnErrorKind::InvalidCharacter => f.write_str("it contains whitespace or control characters"),
        }
    }
}

impl std::error::Error for DsnParseError {}

fn fail<T>(kind: DsnErrorKind) -> Result<T, DsnParseError> {
    Err(DsnParseError { kind })
}

/// Shortens user-provided fragments quoted in error messages.
fn quote(s: &str) -> String {
    s.chars().take(32).collect()
}

impl FromStr for Dsn {
    type Err = DsnParseError;

    /// Parses like a URL parser would (as Relay and sentry-rust do): the authority
    /// ends at the first `/`, `?` or `#`; a query or fragment is ignored; the host
    /// must be a valid name, IPv4 address or bracketed IPv6 address. Errors never
    /// quote the keys.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        parse(raw.trim()).map_err(|e| e.without_keys_of(raw))
    }
}

impl DsnParseError {
    /// Drops a quoted fragment that contains a key of `raw` (a malformed DSN can
    /// put a key where a port or project id is expected).
    fn without_keys_of(mut self, raw: &str) -> Self {
        let rest = raw.split_once("://").map_or(raw, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let Some((userinfo, _)) = authority.rsplit_once('@') else { return self };
        let keys: Vec<&str> = userinfo.split(':').filter(|k| !k.is_empty()).collect();
        let quoted = match &mut self.kind {
            DsnErrorKind::UnsupportedScheme(q) | DsnErrorKind::InvalidPort(q) | DsnErrorKind::InvalidProjectId(q) => q,
            _ => return self,
        };
        if keys.iter().any(|k| quoted.contains(k) || k.contains(quoted.as_str())) {
            *quoted = "…".to_owned();
        }
        self
    }
}

fn parse(s: &str) -> Result<Dsn, DsnParseError> {
    if s.is_empty() {
        return fail(DsnErrorKind::Empty);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail(DsnErrorKind::InvalidCharacter);
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return fail(DsnErrorKind::MissingScheme);
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return fail(DsnErrorKind::UnsupportedScheme(quote(scheme))),
    };
    // The query and fragment are not part of the endpoint.
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((userinfo, hostport)) = authority.rsplit_once('@') else {
        return fail(DsnErrorKind::MissingPublicKey);
    };
    let (public_key, secret_key) = match userinfo.split_once(':') {
        Some((k, s)) => (k, (!s.is_empty()).then(|| s.to_owned())),
        None => (userinfo, None),
    };
    if public_key.is_empty() {
        return fail(DsnErrorKind::MissingPublicKey);
    }
    let (host, port) = split_host_port(hostport)?;
    let path = path.trim_end_matches('/');
    let (prefix, project_id) = match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    if project_id.is_empty() {
        return fail(DsnErrorKind::MissingProjectId);
    }
    if !project_id.bytes().all(|b| b.is_ascii_digit()) {
        return fail(DsnErrorKind::InvalidProjectId(quote(project_id)));
    }
    Ok(Dsn {
        scheme,
        public_key: public_key.to_owned(),
        secret_key,
        host: host.to_owned(),
        port,
        path: prefix.to_owned(),
        project_id: project_id.to_owned(),
    })
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), DsnParseError> {
    let (host, port) = if authority.starts_with('[') {
        // IPv6 literals keep their brackets: `[::1]:9000`.
        let Some(end) = authority.find(']') else {
            return fail(DsnErrorKind::InvalidHost("has an unclosed `[`"));
        };
        let (host, rest) = authority.split_at(end + 1);
        if host[1..end].parse::<std::net::Ipv6Addr>().is_err() {
            return fail(DsnErrorKind::InvalidHost("is not a valid IPv6 address"));
        }
        match rest {
            "" => (host, None),
            _ => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return fail(DsnErrorKind::InvalidHost("has characters after its `]`")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return fail(DsnErrorKind::MissingHost);
    }
    if !host.starts_with('[') {
        check_host_name(host)?;
    }
    let port = match port {
        None => None,
        // Digits only: `u16::from_str` would also take `+80`.
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ if p.contains(':') => return fail(DsnErrorKind::InvalidHost("has more than one `:` (IPv6 needs `[…]`)")),
            _ => return fail(DsnErrorKind::InvalidPort(quote(p))),
        },
    };
    Ok((host, port))
}

/// A DNS name or dotted IPv4 address, as URL parsers accept it (no percent-encoding).
fn check_host_name(host: &str) -> Result<(), DsnParseError> {
    if host.chars().any(|c| "%<>[]\\^|\"`{}".contains(c)) {
        return fail(DsnErrorKind::InvalidHost("contains a character not allowed in a host name"));
    }
    if host.trim_end_matches('.').split('.').any(str::is_empty) {
        return fail(DsnErrorKind::InvalidHost("has an empty label"));
    }
    // A name whose last label is numeric is an IPv4 address to URL parsers.
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    if last.bytes().all(|b| b.is_ascii_digit()) && host.trim_end_matches('.').parse::<std::net::Ipv4Addr>().is_err() {
        return fail(DsnErrorKind::InvalidHost("is not a valid IPv4 address"));
    }
    Ok(())
}

impl Dsn {
    /// The public key.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The deprecated secret key, if any.
    pub fn secret_key(&self) -> Option<&str> {
        self.secret_key.as_deref()
    }

    /// The host (IPv6 literals with brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The project id.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// `{scheme}://{host}[:port]{path}`.
    pub fn base_url(&self) -> String {
        let scheme = if self.is_https() { "https" } else { "http" };
        match self.port {
            Some(p) => format!("{scheme}://{}:{p}{}", self.host, self.path),
            None => format!("{scheme}://{}{}", self.host, self.path),
        }
    }

    /// The envelope endpoint.
    pub fn envelope_url(&self) -> String {
        format!("{}/api/{}/envelope/", self.base_url(), self.project_id)
    }

    /// The organization id encoded in sentry.io hosts (`o123.ingest.sentry.io`).
    pub fn org_id(&self) -> Option<u64> {
        let first = self.host.split('.').next()?;
        first.strip_prefix('o').and_then(|n| n.parse().ok())
    }

    /// The `X-Sentry-Auth` header value for a client `name/version`.
    pub fn auth_header(&self, client: &str) -> String {
        let mut out = format!("Sentry sentry_version=7, sentry_client={client}, sentry_key={}", self.public_key);
        if let Some(secret) = &self.secret_key {
            out.push_str(", sentry_secret=");
            out.push_str(secret);
        }
        out
    }
}

impl fmt::Display for Dsn {
    /// The DSN with the secret key elided.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.is_https() { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.public_key)?;
        if self.secret_key.is_some() {
            f.write_str(":***")?;
        }
        write!(f, "@{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}/{}", self.path, self.project_id)
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        s.parse::<Dsn>().unwrap_err().to_string()
    }

    #[test]
    fn parses_full_dsn() {
        let dsn: Dsn = "https://pub:sec@o11.ingest.us.sentry.io:8443/base/path/123".parse().unwrap();
        assert_eq!(dsn.public_key(), "pub");
        assert_eq!(dsn.secret_key(), Some("sec"));
        assert_eq!(dsn.port(), Some(8443));
        assert_eq!(dsn.envelope_url(), "https://o11.ingest.us.sentry.io:8443/base/path/api/123/envelope/");
        assert_eq!(dsn.org_id(), Some(11));
        assert!(dsn.auth_header("x/1").ends_with("sentry_key=pub, sentry_secret=sec"));
    }

    #[test]
    fn parses_ipv6_and_trailing_slash() {
        let dsn: Dsn = "http://k@[::1]:9000/7/".parse().unwrap();
        assert_eq!(dsn.host(), "[::1]");
        assert_eq!(dsn.envelope_url(), "http://[::1]:9000/api/7/envelope/");
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(err("").contains("empty"));
        assert!(err("o1.ingest.sentry.io/1").contains("no scheme"));
        assert!(err("ftp://k@h/1").contains("ftp"));
        assert!(err("https://h/1").contains("public key"));
        assert!(err("https://@h/1").contains("public key"));
        assert!(err("https://k@/1").contains("host"));
        assert!(err("https://k@h:99999/1").contains("port"));
        assert!(err("https://k@h").contains("project id"));
        assert!(err("https://k@h/abc").contains("not numeric"));
        assert!(err("https://k@h /1").contains("whitespace"));
    }

    #[test]
    fn malformed_hosts_ports_and_paths_are_errors() {
        for (dsn, problem) in [
            ("https://k@h:12:34/1", "more than one `:`"),
            ("https://k@[::1/1", "unclosed"),
            ("https://k@[::1/1]", "unclosed"),
            ("https://k@[zz::1]/1", "IPv6"),
            ("https://k@[::1]x/1", "after its `]`"),
            ("https://k@::1/1", "host is missing"),
            ("https://k@ho%st/1", "not allowed"),
            ("https://k@ho^st/1", "not allowed"),
            ("https://k@999.999.999.999/1", "IPv4"),
            ("https://k@1.2.3/1", "IPv4"),
            ("https://k@a..b/1", "empty label"),
            ("https://k@.h/1", "empty label"),
            ("https://k@h:/1", "port"),
            ("https://k@h:+80/1", "port"),
            ("https://k@h:0/1", "port"),
            ("https://k@h:-1/1", "port"),
            ("https://k@h?x/1", "project id"),
            ("https://k@h#/1", "project id"),
        ] {
            let message = err(dsn);
            assert!(message.contains(problem), "{dsn}: {message}");
        }
    }

    #[test]
    fn queries_and_fragments_do_not_change_the_endpoint() {
        for raw in ["https://k@h/42?x=1", "https://k@h/42#frag", "https://k@h/42?a=/7#/9", "https://k@h/42/?q=@x/9"] {
            let dsn: Dsn = raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(dsn.envelope_url(), "https://h/api/42/envelope/", "{raw}");
            assert_eq!(dsn.public_key(), "k", "{raw}");
        }
        // An `@` after the authority is not the end of the user info.
        let dsn: Dsn = "https://k@h/p@x/42".parse().unwrap();
        assert_eq!((dsn.host(), dsn.envelope_url().as_str()), ("h", "https://h/p@x/api/42/envelope/"));
        let dsn: Dsn = "https://k@127.0.0.1:9000/1".parse().unwrap();
        assert_eq!(dsn.host(), "127.0.0.1");
    }

    #[test]
    fn errors_never_quote_the_keys() {
        for raw in [
            "https://pubk3y:s3cr3t@h:s3cr3t/1",
            "https://pubk3y:s3cr3t@h/s3cr3t",
            "https://pubk3y:s3cr3t@/1",
            "https://pubk3y:s3cr3t@h:1:2/1",
            "https://pubk3y:s3cr3t@[s3cr3t]/1",
            "s3cr3t://pubk3y:s3cr3t@h/1",
            "https://pubk3y:s3cr3t/1",
        ] {
            let message = err(raw);
            assert!(!message.contains("s3cr3t") && !message.contains("pubk3y"), "{raw}: {message}");
        }
    }

    #[test]
    fn display_and_debug_hide_the_secret() {
        let dsn: Dsn = "https://pub:topsecret@h/1".parse().unwrap();
        assert!(!format!("{dsn} {dsn:?}").contains("topsecret"));
    }
}
