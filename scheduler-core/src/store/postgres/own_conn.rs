//! Connections of their own, outside the pool, for work that must not queue behind the pool's
//! users: heartbeats (a busy pool must never make a live node look dead), the rescue, and run
//! starts. Each is made on first use and made again after any error, with its session
//! settings (timeouts, commit mode) applied when it connects.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;
use parking_lot::Mutex;

use super::db;
use crate::store::StoreError;

/// One connection for one role.
pub(super) struct OwnConn {
    url: String,
    setup: String,
    conn: Mutex<Option<PgConnection>>,
}

impl OwnConn {
    /// A connection to `url` that runs `setup` (SQL, e.g. `SET statement_timeout = 500`) after
    /// connecting. `connect` bounds the connect itself and, through TCP, a call whose peer
    /// went silent, so a cut network fails the call instead of hanging it.
    pub(super) fn new(url: &str, connect: Duration, setup: String) -> OwnConn {
        OwnConn { url: with_timeouts(url, connect), setup, conn: Mutex::new(None) }
    }

    /// Runs `f` on the connection, connecting first if needed; any error drops the connection
    /// (the next call connects again).
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, diesel::result::Error>,
    ) -> Result<T, StoreError> {
        Self::run(self.conn.lock(), &self.url, &self.setup, f)
    }

    fn run<T>(
        mut slot: parking_lot::MutexGuard<'_, Option<PgConnection>>,
        url: &str,
        setup: &str,
        f: impl FnOnce(&mut PgConnection) -> Result<T, diesel::result::Error>,
    ) -> Result<T, StoreError> {
        if slot.is_none() {
            let mut c = PgConnection::establish(url)
                .map_err(|e| StoreError::Unavailable(format!("cannot connect: {}", e.to_string().trim())))?;
            c.batch_execute(setup).map_err(db)?;
            *slot = Some(c);
        }
        let conn = slot.as_mut().expect("connected above");
        f(conn).map_err(|e| {
            *slot = None;
            db(e)
        })
    }
}

/// `url` with libpq's connect timeout (whole seconds, at least 2, libpq's minimum), TCP
/// keepalives and a TCP user timeout added, unless the URL sets them itself.
fn with_timeouts(url: &str, connect: Duration) -> String {
    let secs = connect.as_secs().max(2);
    let ms = connect.as_millis().max(1_000);
    let mut out = url.to_owned();
    for (k, v) in [
        ("connect_timeout", secs.to_string()),
        ("keepalives", "1".to_owned()),
        ("keepalives_idle", secs.to_string()),
        ("keepalives_interval", "1".to_owned()),
        ("keepalives_count", "2".to_owned()),
        ("tcp_user_timeout", ms.to_string()),
    ] {
        if url.contains(&format!("{k}=")) {
            continue;
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            out.push(if out.contains('?') { '&' } else { '?' });
        } else {
            out.push(' '); // key=value connection strings
        }
        out.push_str(&format!("{k}={v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_timeouts;

    #[test]
    fn timeouts_are_added_unless_the_url_sets_them() {
        let u =
            with_timeouts("postgres://a@h/db?sslmode=disable&connect_timeout=9", std::time::Duration::from_millis(500));
        assert!(u.starts_with("postgres://a@h/db?sslmode=disable&connect_timeout=9&keepalives=1"), "{u}");
        assert!(u.contains("tcp_user_timeout=1000"), "{u}");
        assert_eq!(u.matches("connect_timeout=").count(), 1);
        let u = with_timeouts("postgres://a@h/db", std::time::Duration::from_secs(5));
        assert!(u.starts_with("postgres://a@h/db?connect_timeout=5&"), "{u}");
        let u = with_timeouts("host=h user=a", std::time::Duration::from_secs(5));
        assert!(u.starts_with("host=h user=a connect_timeout=5 keepalives=1"), "{u}");
    }
}
