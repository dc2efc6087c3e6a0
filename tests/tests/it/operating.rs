//! Operating the service: health and readiness, run history queries, statistics, retention,
//! metrics.

use std::time::Duration;

use harness::{wait_until, Backend, PgServer, PluginDir, Server, ServerOptions};
use serde_json::Value;

fn health_live_and_ready_answer_with_versions(b: Backend) {
    let s = Server::start_on(b);
    for path in ["/health", "/live"] {
        assert_eq!(s.get(path).status, 200, "{path}");
    }
    let h = s.get("/health").body;
    assert_eq!(h["pluginAbi"], "1.0.0");
    assert!(h["version"].is_string());
    let r = s.get("/ready");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["checks"], serde_json::json!({"store": "ok", "plugins": "ok"}));
    // A node without plugins cannot do its work.
    let empty = Server::start_with(ServerOptions::on(b).plugins(PluginDir::empty()));
    let r = empty.get("/ready");
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.body["checks"]["plugins"].as_str().unwrap().contains("--plugins"), "{}", r.text);
    assert_eq!(empty.get("/live").status, 200);
}

on_both_stores!(health_live_and_ready_answer_with_versions);

#[test]
fn ready_turns_503_while_postgres_is_down_and_200_when_it_is_back() {
    let pg = PgServer::start();
    let db = std::sync::Arc::new(pg.database());
    let s = Server::start_with(ServerOptions::default().database(db));
    assert_eq!(s.get("/ready").status, 200);
    pg.halt();
    let down: Value = wait_until("/ready to fail", Duration::from_secs(30), || {
        let r = s.get("/ready");
        (r.status == 503).then_some(r.body)
    });
    assert!(down["checks"]["store"].as_str().unwrap().contains("unreachable"), "{down}");
    assert_eq!(down["checks"]["plugins"], "ok");
    assert_eq!(s.get("/live").status, 200, "the process itself is fine");
    pg.resume();
    wait_until("/ready to recover", Duration::from_secs(30), || (s.get("/ready").status == 200).then_some(()));
}
