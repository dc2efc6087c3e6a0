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
        let admin_url = admin_url();
        let name = format!("sched_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL {admin_url}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        TestDb {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }

    /// Runs SQL on this database (for tests that inspect or change it directly).
    pub fn execute(&self, sql: &str) -> usize {
        let mut conn = PgConnection::establish(&self.url).expect("connect to the test database");
        diesel::sql_query(sql).execute(&mut conn).expect("test SQL")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// A migrated PostgreSQL store on its own fresh database, for the conformance suite.
pub struct PgTestStore {
    store: scheduler_core::store::postgres::PgStore,
    _db: TestDb,
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
        assert_eq!(
            with_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            with_database("postgres://u@h:1/postgres?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }
}
