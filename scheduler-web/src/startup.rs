//! Building the service from its configuration: plugins, store, engine, HTTP server.

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};
use anyhow::{bail, Context};
use scheduler_core::cluster::ClusterConfig;
use scheduler_core::engine::EngineConfig;
use scheduler_core::limits::Limits;
use scheduler_core::model::GroupKey;
use scheduler_core::plugin::{load_plugins, Registry};
use scheduler_core::retention::RetentionConfig;
use scheduler_core::store::memory::MemoryStore;
use scheduler_core::store::postgres::{PgConfig, PgStore};
use scheduler_core::store::Retention;
use scheduler_core::store::Store;
use scheduler_core::{Scheduler, SchedulerConfig, SystemClock};

use crate::auth::{AcrossProducts, Admin, AnyCaller, Auth, Metrics, Open, RateLimit, TokensFile};
use crate::config::{DbArgs, JobStoreKind, ServeConfig};
use crate::routes::{self, PREFIXES};
use crate::state::AppState;
use crate::{openapi, shutdown};

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    scheduler: Arc<Scheduler>,
    auth: web::Data<Auth>,
    config: ServeConfig,
}

impl Application {
    /// Loads plugins, opens the store, starts the engine and binds the HTTP server.
    pub fn build(config: ServeConfig) -> anyhow::Result<Application> {
        let auth = web::Data::new(auth_from(&config)?);
        let auth_data = auth.clone();
        // Read before anything starts, so a bad certificate stops nothing half-started.
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        let (registry, refused) = match &config.plugins {
            Some(dir) => {
                let report = load_plugins(dir)?;
                if config.strict_plugins && !report.refused.is_empty() {
                    let files: Vec<String> = report.refused.iter().map(|r| r.to_string()).collect();
                    bail!(
                        "{} plugin file(s) refused and --strict-plugins is set:\n  {}",
                        files.len(),
                        files.join("\n  ")
                    );
                }
                (report.registry, report.refused)
            }
            None => {
                tracing::warn!("no --plugins directory given: no job types are registered");
                (Registry::default(), Vec::new())
            }
        };
        let groups: Vec<String> = registry.job_types().iter().map(|e| e.group.to_string()).collect();
        tracing::info!(groups = ?groups, refused = refused.len(), "plugins ready");

        // One clock for the engine and the memory store.
        let clock: Arc<dyn scheduler_core::Clock> = Arc::new(SystemClock);
        let (store, poll): (Arc<dyn Store>, _) = match config.jobstore {
            JobStoreKind::Memory => {
                (Arc::new(MemoryStore::new().with_clock(clock.clone()).with_stats(!config.no_stats)), None)
            }
            JobStoreKind::Postgres => {
                let pg = open_postgres(&config.db)?;
                if config.no_migrate {
                    pg.check_schema()?;
                } else {
                    let report = pg.migrate()?;
                    if !report.applied.is_empty() {
                        tracing::info!(applied = ?report.applied, "database migrated");
                    }
                }
                (Arc::new(pg.with_stats(!config.no_stats)), Some(config.poll_interval))
            }
        };
        let host = host_name();
        let node =
            config.node_name.clone().unwrap_or_else(|| format!("{host}-{:08x}", uuid::Uuid::new_v4().as_u128() as u32));
        let workers = usize::from(config.workers);
        let mut max_running = Vec::new();
        for (product, group, n) in &config.max_running {
            let key = GroupKey::new(product, group).with_context(|| format!("--max-running {product}/{group}={n}"))?;
            if registry.lookup(product, group).is_none() {
                tracing::warn!(group = %key, "--max-running names a product/group no loaded plugin has");
            }
            max_running.push((key, *n));
        }
        let scheduler = Arc::new(Scheduler::start(
            store,
            Arc::new(registry),
            clock,
            SchedulerConfig {
                node: node.clone(),
                host,
                engine: EngineConfig {
                    workers,
                    queue: config.queue.map_or(workers, usize::from),
                    poll_interval: poll,
                    ..EngineConfig::default()
                },
                cluster: ClusterConfig { heartbeat: config.heartbeat, ..ClusterConfig::default() },
                max_running,
                metrics: !config.no_metrics,
                limits: Limits {
                    payload_bytes: config.max_payload_bytes,
                    payload_depth: usize::from(config.max_payload_depth),
                    pending_per_product: Some(config.max_pending_jobs).filter(|n| *n > 0),
                },
                retention: Some(RetentionConfig {
                    keep: Retention {
                        succeeded: config.retain_succeeded,
                        failed: config.retain_failed,
                        stats: config.retain_stats,
                        batch: 1_000,
                    },
                    every: config.retention_interval,
                }),
            },
        )?);

        if let Some(path) = &config.schedules {
            if let Err(e) = scheduler.apply_schedules_file(path) {
                scheduler.shutdown(std::time::Duration::ZERO, std::time::Duration::ZERO);
                bail!("{e}");
            }
        }
        let state = web::Data::new(AppState {
            scheduler: scheduler.clone(),
            refused,
            max_body_bytes: config.max_body_bytes,
            schedules: config.schedules.clone(),
        });
        let mut server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(state.clone())
                .app_data(auth.clone())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .service(routes::get_only::<Open, _, _>("/api/openapi.json", openapi::document))
                .service(routes::get_only::<Open, _, _>("/swagger.json", openapi::document))
                .service(routes::get_only::<Open, _, _>("/health", routes::health::health))
                .service(routes::get_only::<Open, _, _>("/live", routes::health::live))
                .service(routes::get_only::<Open, _, _>("/ready", routes::health::ready))
                .service(routes::get_only::<Metrics, _, _>("/metrics", routes::metrics::metrics))
                .service(routes::get_only::<AcrossProducts, _, _>("/api/runs", routes::history::list))
                .service(routes::get_only::<AnyCaller, _, _>("/api/runs/{runId}", routes::history::get))
                .service(routes::get_only::<AcrossProducts, _, _>("/api/stats", routes::stats::window))
                .service(routes::get_only::<AcrossProducts, _, _>("/api/stats/daily", routes::stats::daily))
                .service(routes::get_only::<Admin, _, _>("/api/audit", routes::audit::list));
            for prefix in PREFIXES {
                app = app.service(web::scope(prefix).configure(routes::scheduler_routes));
            }
            app.default_service(web::to(routes::fallback))
        })
        .disable_signals()
        .shutdown_timeout(5);
        if let Some(n) = config.http_workers {
            server = server.workers(usize::from(n));
        }
        let (server, scheme) = match tls {
            Some(tls) => (server.bind_rustls_0_23(config.bind, tls), "https"),
            None => (server.bind(config.bind), "http"),
        };
        let server = server.with_context(|| format!("cannot listen on {}", config.bind))?;
        let port = server.addrs().first().map(|a| a.port()).unwrap_or(0);
        tracing::info!(node = %node, jobstore = ?config.jobstore, workers, "scheduler listening on {scheme}://{}:{port}", config.bind.ip());
        Ok(Application { port, server: server.run(), scheduler, auth: auth_data, config })
    }

    /// The port the server listens on (useful when binding port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or Ctrl-C, then stops: no new runs, running ones get the
    /// shutdown timeout to finish, then are asked to stop.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        // SIGHUP re-reads the tokens file (rotating a token needs no restart).
        let auth = self.auth.clone();
        tokio::spawn(shutdown::on_hangup(move || auth.reload_tokens()));
        tokio::select! {
            r = &mut server => {
                r.context("HTTP server task failed")?.context("HTTP server failed")?;
            }
            signal = shutdown::signal() => {
                tracing::info!(signal, grace = ?self.config.shutdown_timeout, "stopping: no new runs; waiting for running jobs");
                let scheduler = self.scheduler.clone();
                let (grace, cancel) = (self.config.shutdown_timeout, self.config.cancel_grace);
                let engine = tokio::task::spawn_blocking(move || scheduler.shutdown(grace, cancel));
                handle.stop(true).await;
                let left = engine.await.context("engine shutdown task failed")?;
                let _ = server.await;
                // No request is answered any more: write the audit entries still queued.
                let scheduler = self.scheduler.clone();
                tokio::task::spawn_blocking(move || scheduler.flush_writes()).await.context("flushing writes failed")?;
                if left > 0 {
                    tracing::warn!(left, "stopped with runs still executing");
                } else {
                    tracing::info!("stopped");
                }
            }
        }
        Ok(())
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Connects to PostgreSQL with the configured URL.
pub fn open_postgres(db: &DbArgs) -> anyhow::Result<PgStore> {
    let url = db.database_url.clone().context("--jobstore postgres needs --database-url (or DATABASE_URL)")?;
    Ok(PgStore::connect(&PgConfig { url, pool_size: db.db_pool_size, connect_timeout: db.db_timeout })?)
}

/// Authentication from the flags, and the refusal to serve a non-loopback address without it.
fn auth_from(config: &ServeConfig) -> anyhow::Result<Auth> {
    let proxies = config.trust_cert_subject_header.clone();
    let Some(path) = &config.auth_tokens else {
        if !proxies.is_empty() {
            bail!("--trust-cert-subject-header maps subjects to scopes in the tokens file: give --auth-tokens FILE");
        }
        if !config.bind.ip().is_loopback() {
            if !config.insecure_no_auth {
                bail!(
                    "refusing to listen on {} without authentication: anyone reaching it could schedule, run and \
                     delete every product's jobs. Give --auth-tokens FILE (see `scheduler token new`), bind to \
                     127.0.0.1, or accept the risk with --insecure-no-auth",
                    config.bind
                );
            }
            tracing::warn!(
                bind = %config.bind,
                "--insecure-no-auth: serving WITHOUT AUTHENTICATION on a non-loopback address; anyone reaching it \
                 can schedule, run and delete every product's jobs"
            );
        }
        return Ok(Auth::off());
    };
    let tokens = TokensFile::open(path).map_err(anyhow::Error::msg)?;
    let (n_tokens, n_subjects) = tokens.get().counts();
    tracing::info!(tokens = n_tokens, subjects = n_subjects, trusted_proxies = ?proxies, "API authentication on");
    let rate = RateLimit::new(config.rate_limit, config.rate_limit_burst);
    if rate.is_none() {
        tracing::warn!("--rate-limit 0: requests per token are not limited");
    }
    Ok(Auth { tokens: Some(tokens), trusted_proxies: proxies, rate })
}
