//! Fresh PostgreSQL databases for tests, on the server `TEST_DATABASE_URL` names (the test
//! command starts a throwaway one). A missing server is a failure, never a skip.

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};

/// A database created for one test and dropped after it.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    name: String,
    admin_url: String,
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "TEST_DATABASE_URL is not set: PostgreSQL tests need a server. Run the test command \
             (scripts/test.sh starts a throwaway PostgreSQL), or `eval \"$(scripts/pg.sh start)\"` first"
        )
    })
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[host_end..].find('/') {
        Some(slash) => &base[..host_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

impl TestDb {
    /// Creates an empty database (the scheduler migrates it when it starts).
    pub fn create() -> TestDb {
        TestDb::create_on(&admin_url())
    }

    /// Creates an empty database on the server of this admin URL.
    pub fn create_on(admin_url: &str) -> TestDb {
        let admin_url = admin_url.to_owned();
        let name = format!("sched_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL {admin_url}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        TestDb { url: with_database(&admin_url, &name), name, admin_url }
    }

    /// Runs SQL on this database (for tests that inspect or change it directly).
    pub fn execute(&self, sql: &str) -> usize {
        let mut conn = self.connect();
        diesel::sql_query(sql).execute(&mut conn).expect("test SQL")
    }

    /// A connection to this database.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to the test database")
    }

    /// The single bigint a query returns (counts).
    pub fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.connect();
        let rows: Vec<N> = diesel::sql_query(sql).load(&mut conn).expect("test SQL");
        rows.first().map_or(0, |r| r.n)
    }
}

/// A PostgreSQL server of a test's own (for tests that stop and start it), from
/// `scripts/pg.sh` in a temporary directory. Removed when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    /// The admin URL of its `postgres` database.
    pub url: String,
}

fn pg_script(dir: &std::path::Path, cmd: &str) -> std::process::Output {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh");
    std::process::Command::new("bash")
        .arg(script)
        .arg(cmd)
        .env("PGTEST_DIR", dir.join("pg"))
        .output()
        .unwrap_or_else(|e| panic!("scripts/pg.sh {cmd}: {e}"))
}

impl PgServer {
    /// Starts a fresh server.
    pub fn start() -> PgServer {
        let dir = tempfile::tempdir().expect("temp dir");
        // The server runs as an unprivileged user when we are root: let it into the directory.
        let _ = std::process::Command::new("chmod").arg("755").arg(dir.path()).status();
        let out = pg_script(dir.path(), "start");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "pg.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
        let url = text
            .lines()
            .find_map(|l| l.strip_prefix("export TEST_DATABASE_URL="))
            .expect("pg.sh printed the URL")
            .to_owned();
        PgServer { dir, url }
    }

    /// Stops the server, keeping its data.
    pub fn halt(&self) {
        let out = pg_script(self.dir.path(), "halt");
        assert!(out.status.success(), "pg.sh halt failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts it again on the same port.
    pub fn resume(&self) {
        let out = pg_script(self.dir.path(), "resume");
        assert!(out.status.success(), "pg.sh resume failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Freezes the server (SIGSTOP to the postmaster and every backend): connections stay open
    /// and every statement, connect and heartbeat hangs instead of failing, the outage a
    /// stalled disk or a paused VM gives.
    pub fn freeze(&self) {
        for pid in self.processes() {
            // SAFETY: kill(2) with a pid read from this server's own postmaster.pid and /proc.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        }
    }

    /// Wakes a frozen server (SIGCONT), the postmaster last.
    pub fn thaw(&self) {
        for pid in self.processes().into_iter().rev() {
            // SAFETY: as in `freeze`.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }

    /// The server's processes: its backends and helpers, then the postmaster.
    fn processes(&self) -> Vec<i32> {
        let pidfile = self.dir.path().join("pg/data/postmaster.pid");
        let text = std::fs::read_to_string(&pidfile).unwrap_or_else(|e| panic!("{}: {e}", pidfile.display()));
        let postmaster: i32 = text.lines().next().and_then(|l| l.trim().parse().ok()).expect("postmaster pid");
        let mut pids: Vec<i32> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces.
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|stat| {
                    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                        == Some(postmaster)
                })
            })
            .collect();
        pids.push(postmaster);
        pids
    }

    /// A fresh database on this server.
    pub fn database(&self) -> TestDb {
        TestDb::create_on(&self.url)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = pg_script(self.dir.path(), "stop");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ =
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut admin);
        }
    }
}

/// A migrated PostgreSQL store on its own fresh database, for the conformance suite.
pub struct PgTestStore {
    store: scheduler_core::store::postgres::PgStore,
    _db: TestDb,
}

impl PgTestStore {
    /// The database under the store (for tests that set up states directly).
    pub fn db(&self) -> &TestDb {
        &self._db
    }
}

impl std::ops::Deref for PgTestStore {
    type Target = scheduler_core::store::postgres::PgStore;
    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

/// A fresh database with the scheduler's schema, and a store on it.
pub fn migrated_store() -> PgTestStore {
    use scheduler_core::store::postgres::{PgConfig, PgStore};
    let db = TestDb::create();
    let store = PgStore::connect(&PgConfig {
        url: db.url.clone(),
        pool_size: 4,
        connect_timeout: std::time::Duration::from_secs(10),
    })
    .expect("connect to the test database");
    store.migrate().expect("migrate the test database");
    PgTestStore { store, _db: db }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(with_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1/postgres?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }
}
