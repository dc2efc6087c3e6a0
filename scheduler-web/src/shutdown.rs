//! Signals: the one to stop, and SIGHUP (reload).

/// Resolves on SIGTERM or SIGINT (Ctrl-C) with the signal's name.
pub async fn signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
            "SIGTERM"
        };
        tokio::select! {
            s = ctrl_c => s,
            s = term => s,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await
}

/// Calls `reload` on every SIGHUP, for as long as the process runs (never, off Unix).
pub async fn on_hangup(reload: impl Fn() + Send + 'static) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the tokens file is read at start only");
            return;
        };
        while hangups.recv().await.is_some() {
            reload();
        }
    }
    #[cfg(not(unix))]
    let _ = reload;
}
