//! Waiting for the signal to stop.

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
