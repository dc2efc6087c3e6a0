//! Schema migrations: the SQL files in `migrations/`, embedded in the binary.

use std::collections::HashSet;

use diesel::pg::PgConnection;
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The migrations this scheduler knows, oldest first.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Serialises migrations across nodes that start together.
const MIGRATION_LOCK: i64 = 0x5C4E_D01E;

/// The schema does not fit this scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The database has migrations this version does not know: a newer scheduler migrated it.
    #[error(
        "the database schema is newer than this scheduler: it has migration(s) {unknown} that this version does not know \
         (it knows up to {latest}); run a newer scheduler, or point this one at another database"
    )]
    Newer {
        /// The unknown migration versions.
        unknown: String,
        /// The newest migration this version knows.
        latest: String,
    },
    /// Migrations are pending and this start was told not to apply them.
    #[error(
        "the database schema is older than this scheduler: {count} migration(s) pending ({names}); \
         run `scheduler migrate` or start without --no-migrate"
    )]
    Older {
        /// How many are pending.
        count: usize,
        /// Their versions.
        names: String,
    },
    /// Running a migration or reading the migration table failed.
    #[error("migrating the database failed: {0}")]
    Failed(String),
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The versions applied now (empty when the schema was current).
    pub applied: Vec<String>,
}

fn failed(e: impl std::fmt::Display) -> SchemaError {
    SchemaError::Failed(e.to_string())
}

fn known() -> Result<Vec<String>, SchemaError> {
    let list = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).map_err(failed)?;
    Ok(list.iter().map(|m| m.name().version().to_string()).collect())
}

fn check_not_newer(conn: &mut PgConnection) -> Result<(), SchemaError> {
    let known = known()?;
    let known_set: HashSet<&str> = known.iter().map(String::as_str).collect();
    let applied = conn.applied_migrations().map_err(failed)?;
    let unknown: Vec<String> =
        applied.iter().map(|v| v.to_string()).filter(|v| !known_set.contains(v.as_str())).collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Newer { unknown: unknown.join(", "), latest: known.last().cloned().unwrap_or_default() })
    }
}

/// Applies pending migrations, refusing a schema newer than this scheduler knows.
pub fn run_pending(conn: &mut PgConnection) -> Result<MigrationReport, SchemaError> {
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(conn).map_err(failed)?;
    let result = (|| {
        check_not_newer(conn)?;
        let applied = conn.run_pending_migrations(MIGRATIONS).map_err(failed)?;
        Ok(MigrationReport { applied: applied.iter().map(|v| v.to_string()).collect() })
    })();
    let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(conn);
    result
}

/// Checks the schema is exactly current: not newer, nothing pending.
pub fn check_current(conn: &mut PgConnection) -> Result<(), SchemaError> {
    check_not_newer(conn)?;
    let pending = conn.pending_migrations(MIGRATIONS).map_err(failed)?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Older {
            count: pending.len(),
            names: pending.iter().map(|m| m.name().version().to_string()).collect::<Vec<_>>().join(", "),
        })
    }
}
