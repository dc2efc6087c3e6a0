//! Statements PostgreSQL keeps prepared per connection. Diesel never caches a `sql_query` (its
//! text could be built at run time), so each call is parsed and planned again; for a short
//! statement sent thousands of times a second (a run's start) that is most of its cost. Wrap
//! only statements of fixed text whose plan does not depend on their values (after five runs
//! PostgreSQL may switch to one generic plan), e.g. lookups by primary key.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A statement of fixed text (its binds vary), prepared once per connection.
pub(super) struct Prepared<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    // Cached by its SQL text (and bind types), not by its Rust type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, C> RunQueryDsl<C> for Prepared<Q> {}
