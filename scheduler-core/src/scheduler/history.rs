//! Run history and statistics.

use super::Scheduler;
use crate::clock::Ts;
use crate::error::CoreError;
use crate::model::{JobId, Run, RunId};
use crate::stats::{self, StatsQuery, Summary};
use crate::store::{RunCursor, RunQuery};

/// The most runs a job's statistics read.
const JOB_STATS_RUNS: usize = 100_000;

impl Scheduler {
    /// A page of run history, newest first, each run with its position for the next page.
    pub fn runs_query(&self, query: &RunQuery) -> Result<Vec<(RunCursor, Run)>, CoreError> {
        Ok(self.rt.store.runs_query(query)?)
    }

    /// One run by id, of a product `visible` accepts: a run of any other product is not found,
    /// as if it did not exist.
    pub fn run_get(&self, run_id: RunId, visible: impl Fn(&str) -> bool) -> Result<Run, CoreError> {
        let not_found = || CoreError::RunNotFound { id: run_id.to_string(), group: "any group".into() };
        self.rt.store.run_get(run_id)?.filter(|r| visible(r.group.product())).ok_or_else(not_found)
    }

    /// Statistics per product/group over a window, or per day.
    pub fn run_stats(&self, query: &StatsQuery) -> Result<Vec<Summary>, CoreError> {
        Ok(stats::summarize(&self.rt.store.stats(query)?))
    }

    /// One job's statistics since an instant, from its runs (exact percentiles).
    pub fn job_stats(&self, product: &str, job_group: &str, id: JobId, since: Ts) -> Result<Summary, CoreError> {
        let job = self.job_get(product, job_group, id)?;
        let mut runs = Vec::new();
        let mut before = None;
        'pages: while runs.len() < JOB_STATS_RUNS {
            let q = RunQuery { job: Some(job.id), before, limit: 1_000, ..RunQuery::default() };
            let page = self.rt.store.runs_query(&q)?;
            let Some((last, _)) = page.last() else { break };
            before = Some(*last);
            for (_, r) in page {
                if r.scheduled_for < since && r.started_at.is_none_or(|s| s < since) {
                    break 'pages;
                }
                runs.push(r);
            }
        }
        Ok(stats::summarize_runs(since, &job.group, &runs))
    }
}

impl Scheduler {
    /// Records a change made through the API, stamped now.
    pub fn audit_record(&self, change: crate::audit::Change) -> Result<(), CoreError> {
        Ok(self.rt.store.audit_append(self.rt.clock.now(), change)?)
    }

    /// A page of the audit trail, newest first.
    pub fn audit_list(&self, query: &crate::audit::AuditQuery) -> Result<Vec<crate::audit::AuditEntry>, CoreError> {
        Ok(self.rt.store.audit_list(query)?)
    }
}
