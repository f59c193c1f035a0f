//! The settings of api-gateway (environment variables and flags).

use std::path::PathBuf;
use std::time::Duration;

use contracts::identity::SigningKey;
use platform::server::{Limits, DEFAULT_BODY_LIMIT};

/// Where the three services are (set by the binary in all-in-one mode).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "gateway_settings_upstreams")]
pub struct Upstreams {
    /// Base URL of pedidos-service (orders).
    #[arg(
        long,
        env = "PEDIDOS_SERVICE_URL",
        default_value = "http://localhost:5001"
    )]
    pub pedidos_service_url: String,
    /// Base URL of pagamentos-service (payments).
    #[arg(
        long,
        env = "PAGAMENTOS_SERVICE_URL",
        default_value = "http://localhost:5002"
    )]
    pub pagamentos_service_url: String,
    /// Base URL of estoque-service (inventory).
    #[arg(
        long,
        env = "ESTOQUE_SERVICE_URL",
        default_value = "http://localhost:5003"
    )]
    pub estoque_service_url: String,
}

#[derive(Debug, Clone, clap::Args)]
#[group(id = "gateway_settings")]
#[command(next_help_heading = "Gateway (api-gateway)")]
pub struct Settings {
    /// How long the gateway waits for an upstream's response headers, in milliseconds.
    /// Keep it above ORDER_LEASE_MS so an order is never cut off while its saga runs.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 30000)]
    pub upstream_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit_bytes: usize,
    /// API keys as `role:sha256hex` entries separated by commas (roles: admin, client);
    /// `client:sha256hex:customer` binds a client key to a customer identity. Unset (and
    /// no OIDC_ISSUER): the gateway runs open. Make a hash with `printf %s "$KEY" | sha256sum`.
    #[arg(long, env = "API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    #[command(flatten)]
    pub oidc: OidcSettings,
    /// The secret the identity header to the services is signed with (IDENTITY_SIGNING_SECRET,
    /// read by the binary: the all-in-one mode makes a random one when none is given).
    #[arg(skip)]
    pub identity_secret: Option<SigningKey>,
    /// Requests a second each client address may make (a token bucket; 0 = no limit).
    /// Over it: 429 with Retry-After. Behind a load balancer every client shares its address.
    #[arg(long, env = "RATE_LIMIT_PER_ADDRESS", default_value_t = 1000.0)]
    pub rate_limit_per_address: f64,
    /// Requests a second each API key may make (0 = no limit); counted on top of the address limit.
    #[arg(long, env = "RATE_LIMIT_PER_KEY", default_value_t = 200.0)]
    pub rate_limit_per_key: f64,
    /// Burst allowed above the rates, in seconds of the rate (2 = twice the rate at once).
    #[arg(long, env = "RATE_LIMIT_BURST_SECONDS", default_value_t = 2.0)]
    pub rate_limit_burst_seconds: f64,
    /// Client connections served at once (0 = no limit); more wait to be accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Time a client has to send its request headers, and longest idle keep-alive, in
    /// milliseconds (0 = no limit): slow clients are disconnected.
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Largest request line plus headers, in bytes (at least 1024): 431 above it.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
}

impl Default for Settings {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            upstream_timeout_ms: 30_000,
            body_limit_bytes: DEFAULT_BODY_LIMIT,
            api_keys: None,
            oidc: OidcSettings::default(),
            identity_secret: None,
            rate_limit_per_address: 1000.0,
            rate_limit_per_key: 200.0,
            rate_limit_burst_seconds: 2.0,
            max_connections: 4096,
            header_read_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
        }
    }
}

impl Settings {
    /// The server-loop limits these settings ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes.max(1024),
            max_headers: 100,
            header_read_timeout: (self.header_read_timeout_ms > 0)
                .then(|| Duration::from_millis(self.header_read_timeout_ms)),
        }
    }
}

/// Bearer tokens of an OpenID Connect provider (off unless OIDC_ISSUER is set).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "gateway_settings_oidc")]
pub struct OidcSettings {
    /// The issuer tokens must name in `iss` (e.g. https://sso.example.com/realms/shop).
    /// Set: bearer tokens are accepted, next to the API keys.
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The audience tokens must name in `aud` (the API's client id at the provider).
    #[arg(long, env = "OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Where the provider publishes its signing keys (JWKS), http(s).
    #[arg(long, env = "OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// A JWKS file instead of a URL.
    #[arg(long, env = "OIDC_JWKS_FILE")]
    pub oidc_jwks_file: Option<PathBuf>,
    /// Public-key algorithms accepted, separated by commas (HS256/384/512 are refused).
    #[arg(long, env = "OIDC_ALGORITHMS", default_value = "RS256,ES256")]
    pub oidc_algorithms: String,
    /// The claim with the caller's roles, a dotted path (Keycloak: realm_access.roles,
    /// Cognito: cognito:groups): a string or an array of strings.
    #[arg(long, env = "OIDC_ROLE_CLAIM", default_value = "roles")]
    pub oidc_role_claim: String,
    /// The role that makes a token's holder an admin; anyone else is a customer.
    #[arg(long, env = "OIDC_ADMIN_ROLE", default_value = "admin")]
    pub oidc_admin_role: String,
    /// The claim whose value a customer's orders carry as `customer` (falls back to `sub`).
    #[arg(long, env = "OIDC_NAME_CLAIM", default_value = "sub")]
    pub oidc_name_claim: String,
    /// Clock skew allowed on exp and nbf, in seconds.
    #[arg(long, env = "OIDC_CLOCK_SKEW_SECONDS", default_value_t = 30)]
    pub oidc_clock_skew_seconds: u64,
    /// How often the JWKS is fetched again, in seconds (at least 10).
    #[arg(long, env = "OIDC_JWKS_REFRESH_SECONDS", default_value_t = 300)]
    pub oidc_jwks_refresh_seconds: u64,
}

impl Default for OidcSettings {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            oidc_issuer: None,
            oidc_audience: None,
            oidc_jwks_url: None,
            oidc_jwks_file: None,
            oidc_algorithms: "RS256,ES256".to_owned(),
            oidc_role_claim: "roles".to_owned(),
            oidc_admin_role: "admin".to_owned(),
            oidc_name_claim: "sub".to_owned(),
            oidc_clock_skew_seconds: 30,
            oidc_jwks_refresh_seconds: 300,
        }
    }
}
