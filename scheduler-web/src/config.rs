//! Command line and environment: every flag has an environment-variable twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The scheduler service: fires plugin jobs at their time, over a REST API.
#[derive(Debug, Parser)]
#[command(name = "scheduler", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a subcommand, serve.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Serving options.
    #[command(flatten)]
    pub serve: ServeConfig,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending PostgreSQL migrations, then exit.
    Migrate(DbArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `scheduler token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random token once, and the entry to add to the tokens file (which keeps only
    /// its SHA-256).
    New {
        /// Who the token is for (recorded in the audit trail).
        #[arg(long)]
        name: String,
        /// `admin`, `product:<name>:read` or `product:<name>:write`; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL (libpq syntax), e.g. `postgres://user:password@host:5432/db?sslmode=require`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Most database connections this node opens.
    #[arg(long, env = "SCHEDULER_DB_POOL_SIZE", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,

    /// How long a request waits for a database connection before failing with 503.
    #[arg(long, env = "SCHEDULER_DB_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub db_timeout: Duration,
}

/// Where jobs are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobStoreKind {
    /// In this process's memory: fast, lost at exit. For local development.
    Memory,
    /// In PostgreSQL: durable, shared by several nodes.
    Postgres,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How to serve.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "SCHEDULER_BIND", default_value = "127.0.0.1:8089")]
    pub bind: SocketAddr,

    /// Where jobs are kept.
    #[arg(long, env = "SCHEDULER_JOBSTORE", value_enum, default_value_t = JobStoreKind::Memory)]
    pub jobstore: JobStoreKind,

    /// Database settings (`--jobstore postgres`).
    #[command(flatten)]
    pub db: DbArgs,

    /// Do not apply pending migrations at start; refuse to start unless the schema is current.
    #[arg(long, env = "SCHEDULER_NO_MIGRATE")]
    pub no_migrate: bool,

    /// With a shared store, how often to look for due work that other nodes created.
    #[arg(long, env = "SCHEDULER_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,

    /// How often this node refreshes its heartbeat; a node silent for two periods is dead and
    /// its runs are resolved by the others.
    #[arg(long, env = "SCHEDULER_HEARTBEAT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,

    /// Directory of plugin libraries (`*.so`) to load.
    #[arg(long, env = "SCHEDULER_PLUGINS")]
    pub plugins: Option<PathBuf>,

    /// Refuse to start if any plugin file is refused.
    #[arg(long, env = "SCHEDULER_STRICT_PLUGINS")]
    pub strict_plugins: bool,

    /// Worker threads: the most runs executing at once on this node.
    #[arg(long, env = "SCHEDULER_WORKERS", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub workers: u16,

    /// Claimed runs that may wait for a free worker; a claim takes up to the idle workers plus
    /// this many (default: as many as `--workers`). Larger batches raise throughput with
    /// PostgreSQL; smaller ones leave more due work to other nodes.
    #[arg(long, env = "SCHEDULER_QUEUE", value_parser = clap::value_parser!(u16).range(0..=10000))]
    pub queue: Option<u16>,

    /// The most runs of a product/group in progress at once across every node sharing the
    /// store, as `product/group=N`; repeat the flag (or separate with commas) for several.
    /// Every node should be given the same limits.
    #[arg(long = "max-running", env = "SCHEDULER_MAX_RUNNING", value_delimiter = ',', value_parser = parse_max_running)]
    pub max_running: Vec<(String, String, u32)>,

    /// A TOML file of jobs that must exist (`[[job]]` tables), applied at start and on
    /// `PUT /api/scheduler`. See the README's "Declared schedules".
    #[arg(long, env = "SCHEDULER_SCHEDULES")]
    pub schedules: Option<std::path::PathBuf>,

    /// How long runs that succeeded (or were skipped) and completed jobs are kept, e.g. `7d`;
    /// `forever` keeps them.
    #[arg(long, env = "SCHEDULER_RETAIN_SUCCEEDED", default_value = "7d", value_parser = parse_age)]
    pub retain_succeeded: Age,

    /// How long runs that failed, were vetoed, cancelled or abandoned (and jobs that ended so)
    /// are kept; `forever` keeps them.
    #[arg(long, env = "SCHEDULER_RETAIN_FAILED", default_value = "90d", value_parser = parse_age)]
    pub retain_failed: Age,

    /// How long hourly run statistics are kept; `forever` keeps them.
    #[arg(long, env = "SCHEDULER_RETAIN_STATS", default_value = "400d", value_parser = parse_age)]
    pub retain_stats: Age,

    /// How often old history is pruned (in batches of 1,000 rows, one node at a time).
    #[arg(long, env = "SCHEDULER_RETENTION_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub retention_interval: Duration,

    /// Do not keep Prometheus metrics (`/metrics` then answers 404).
    #[arg(long, env = "SCHEDULER_NO_METRICS")]
    pub no_metrics: bool,

    /// Do not keep run statistics (`/api/stats` then answers with nothing).
    #[arg(long, env = "SCHEDULER_NO_STATS")]
    pub no_stats: bool,

    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "SCHEDULER_HTTP_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub http_workers: Option<u16>,

    /// This node's name in run records (default: host name and a random start id).
    #[arg(long, env = "SCHEDULER_NODE_NAME")]
    pub node_name: Option<String>,

    /// On SIGTERM or Ctrl-C, how long running jobs may take to finish before they are asked
    /// to stop (e.g. `30s`, `2m`).
    #[arg(long, env = "SCHEDULER_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// After asking running jobs to stop, how long to wait for them before exiting anyway.
    #[arg(long, env = "SCHEDULER_CANCEL_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub cancel_grace: Duration,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "SCHEDULER_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// Largest job payload (the request a job receives, as JSON text), in bytes.
    #[arg(long, env = "SCHEDULER_MAX_PAYLOAD_BYTES", default_value_t = 64 * 1024)]
    pub max_payload_bytes: usize,

    /// Deepest nesting of objects and arrays in a request body (the body is level 1).
    #[arg(long, env = "SCHEDULER_MAX_PAYLOAD_DEPTH", default_value_t = 32, value_parser = clap::value_parser!(u16).range(2..=128))]
    pub max_payload_depth: u16,

    /// Most unfinished jobs (scheduled, running, paused, recurring) a product may have; more
    /// creates get 429 with `Retry-After`. 0: no quota. Counted once a second per node, so
    /// several nodes may overshoot it by the creates they admit within that second.
    #[arg(long, env = "SCHEDULER_MAX_PENDING_JOBS", default_value_t = 100_000)]
    pub max_pending_jobs: u64,

    /// Requests each token (or certificate subject) may make on average: `N/s`, `N/min` or
    /// `N/h` (a bare number is per second); more get 429 with `Retry-After`. 0: no limit.
    /// Applies when authentication is on.
    #[arg(long, env = "SCHEDULER_RATE_LIMIT", default_value = "100/s", value_parser = parse_rate)]
    pub rate_limit: Rate,

    /// Requests a token may make at once above its average rate (at least 1).
    #[arg(long, env = "SCHEDULER_RATE_LIMIT_BURST", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,

    /// Log format.
    #[arg(long, env = "SCHEDULER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Export spans (one per run, trace id = the run's trace id) over OTLP/HTTP to this URL,
    /// e.g. http://collector:4318 (`/v1/traces` is appended unless the URL has a path). Needs
    /// a build with the `otlp` feature; off by default.
    #[arg(long, env = "SCHEDULER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Tokens file (TOML: name, SHA-256 of the token, scopes). With it every route but health
    /// needs a token; without it the service only binds to loopback.
    #[arg(long, env = "SCHEDULER_AUTH_TOKENS", value_name = "FILE")]
    pub auth_tokens: Option<PathBuf>,

    /// Believe the client certificate subject in `X-Cert-Subject-DN` from these proxy
    /// addresses (repeat, or separate with commas); subjects map to scopes in the tokens file.
    #[arg(long, env = "SCHEDULER_TRUST_CERT_SUBJECT_HEADER", value_name = "PROXY_IP", value_delimiter = ',')]
    pub trust_cert_subject_header: Vec<std::net::IpAddr>,

    /// Serve HTTPS with this PEM certificate chain (leaf first); needs `--tls-key`.
    #[arg(long, env = "SCHEDULER_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "SCHEDULER_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve without authentication on a non-loopback address. Anyone who can reach the port
    /// can then schedule and delete any job; warned about at every start.
    #[arg(long, env = "SCHEDULER_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

/// Parses `product/group=N` (N at least 1).
fn parse_max_running(s: &str) -> Result<(String, String, u32), String> {
    let err = || format!("`{s}`: expected product/group=N with N at least 1, e.g. vps4/backups=4");
    let (group, n) = s.trim().split_once('=').ok_or_else(err)?;
    let (product, job_group) = group.split_once('/').ok_or_else(err)?;
    let n: u32 = n.parse().ok().filter(|n| *n >= 1).ok_or_else(err)?;
    if product.is_empty() || job_group.is_empty() {
        return Err(err());
    }
    Ok((product.to_owned(), job_group.to_owned(), n))
}

/// A request rate as the time one request's allowance takes to come back; `None`: no limit.
pub type Rate = Option<Duration>;

fn parse_rate(s: &str) -> Result<Rate, String> {
    let err = || format!("`{s}`: expected N/s, N/min or N/h (a bare N is per second), or 0 for no limit");
    let (n, per) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
    let n: u32 = n.trim().parse().map_err(|_| err())?;
    let per = match per.trim() {
        "s" | "sec" => Duration::from_secs(1),
        "m" | "min" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(err()),
    };
    Ok((n > 0).then(|| per / n))
}

/// A retention age: a duration, or `forever` (`None`).
pub type Age = Option<Duration>;

fn parse_age(s: &str) -> Result<Age, String> {
    if s.trim().eq_ignore_ascii_case("forever") {
        return Ok(None);
    }
    humantime::parse_duration(s.trim()).map(Some).map_err(|e| format!("`{s}`: {e} (e.g. 7d, 12h, or forever)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_minute_or_hour() {
        assert_eq!(parse_rate("100/s"), Ok(Some(Duration::from_millis(10))));
        assert_eq!(parse_rate("100"), Ok(Some(Duration::from_millis(10))));
        assert_eq!(parse_rate("10/min"), Ok(Some(Duration::from_secs(6))));
        assert_eq!(parse_rate(" 2 / h "), Ok(Some(Duration::from_secs(1800))));
        assert_eq!(parse_rate("0"), Ok(None));
        for bad in ["", "x/s", "10/day", "-1/s", "1.5/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
