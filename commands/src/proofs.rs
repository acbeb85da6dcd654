//! Domain verification against the real world: a DNS TXT record through a real resolver, or
//! a file fetched over HTTPS or HTTP by a client that resolves hosts with that same resolver.
//!
//! The HTTP fetch goes to an address a tenant chooses, so it must not become a way into our
//! own network (SSRF): every address a name resolves to is checked, redirects are re-checked,
//! and answers are bounded in size and time. Loopback, private and link-local targets are
//! refused unless configuration allows them, which tests do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::web_domain::{DomainProofs, Hostname, ProofMethod, VerificationToken};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

/// The largest proof file read; the token is far smaller.
const MAX_BODY_BYTES: usize = 4096;
/// How long one HTTP attempt may take, connection included.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 3;

/// Where and how proofs are looked for.
#[derive(Debug, Clone)]
pub struct ProofSettings {
    /// The DNS server to ask; `None` uses the system's resolver configuration.
    pub resolver: Option<SocketAddr>,
    /// Port of the HTTPS proof (443 in production).
    pub https_port: u16,
    /// Port of the plain HTTP proof (80 in production).
    pub http_port: u16,
    /// Allow loopback, private and link-local targets. Only for tests and private setups.
    pub allow_private_targets: bool,
}

impl Default for ProofSettings {
    fn default() -> Self {
        Self {
            resolver: None,
            https_port: 443,
            http_port: 80,
            allow_private_targets: false,
        }
    }
}

/// The real checker.
pub struct NetworkProofs {
    resolver: Arc<TokioResolver>,
    http: reqwest::Client,
    settings: ProofSettings,
}

impl NetworkProofs {
    /// Builds the resolver and the HTTP client.
    pub fn new(settings: ProofSettings) -> Result<Self, ResolveError> {
        let builder = match settings.resolver {
            Some(address) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(address, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(address, Protocol::Tcp));
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            }
            None => TokioResolver::builder_tokio()?,
        };
        let resolver = Arc::new(builder.build());
        let allow_private = settings.allow_private_targets;
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                resolver: resolver.clone(),
                allow_private,
            }))
            .redirect(redirect::Policy::custom(move |attempt| {
                let literal_ip = attempt
                    .url()
                    .host_str()
                    .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok());
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if literal_ip.is_some_and(|ip| !allow_private && !is_public(ip)) {
                    attempt.error("redirected to a private address")
                } else {
                    attempt.follow()
                }
            }))
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            .user_agent("UpzentoDomainVerifier/1")
            .build()
            .map_err(|e| ResolveError::from(e.to_string()))?;
        Ok(Self {
            resolver,
            http,
            settings,
        })
    }

    async fn dns(&self, hostname: &Hostname, token: &VerificationToken) -> Result<(), String> {
        let name = VerificationToken::dns_name(hostname);
        let expected = token.dns_value();
        let lookup = self
            .resolver
            .txt_lookup(format!("{name}."))
            .await
            .map_err(|e| format!("no TXT record {name} was found ({e})"))?;
        let found: Vec<String> = lookup
            .iter()
            .map(|txt| {
                txt.txt_data()
                    .iter()
                    .map(|part| String::from_utf8_lossy(part))
                    .collect::<String>()
            })
            .collect();
        if found.iter().any(|value| value.trim() == expected) {
            Ok(())
        } else {
            Err(format!(
                "the TXT record {name} holds {found:?}, not \"{expected}\""
            ))
        }
    }

    async fn http(
        &self,
        scheme: &str,
        port: u16,
        hostname: &Hostname,
        token: &VerificationToken,
    ) -> Result<(), String> {
        let url = format!(
            "{scheme}://{hostname}:{port}{}",
            VerificationToken::HTTP_PATH
        );
        let mut response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url} could not be fetched ({})", error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{url} could not be read ({})", error_chain(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY_BYTES {
                return Err(format!("{url} is larger than {MAX_BODY_BYTES} bytes"));
            }
        }
        if String::from_utf8_lossy(&body).trim() == token.as_str() {
            Ok(())
        } else {
            Err(format!("{url} does not contain the verification token"))
        }
    }
}

#[async_trait]
impl DomainProofs for NetworkProofs {
    async fn check(
        &self,
        hostname: &Hostname,
        token: &VerificationToken,
    ) -> Result<ProofMethod, String> {
        let dns = match self.dns(hostname, token).await {
            Ok(()) => return Ok(ProofMethod::Dns),
            Err(why) => why,
        };
        let https = match self
            .http("https", self.settings.https_port, hostname, token)
            .await
        {
            Ok(()) => return Ok(ProofMethod::Https),
            Err(why) => why,
        };
        match self
            .http("http", self.settings.http_port, hostname, token)
            .await
        {
            Ok(()) => Ok(ProofMethod::Http),
            Err(http) => Err(format!("DNS: {dns}; HTTPS: {https}; HTTP: {http}")),
        }
    }
}

/// reqwest's resolver: the same DNS server as the TXT check, and only public addresses.
struct GuardedResolver {
    resolver: Arc<TokioResolver>,
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.resolver.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let lookup = resolver.lookup_ip(format!("{}.", name.as_str())).await?;
            let addresses: Vec<SocketAddr> = lookup
                .iter()
                .filter(|ip| allow_private || is_public(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if addresses.is_empty() {
                return Err(format!("{} resolves to no public address", name.as_str()).into());
            }
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

/// False for loopback, private, link-local, unspecified, multicast and other addresses that
/// are not on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} counted as public");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} counted as private");
        }
    }
}
