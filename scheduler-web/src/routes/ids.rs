//! Ids in paths, parsed where they enter: the scheduler's operations take typed ids. An
//! unknown product/group is a 404 for the group (as any request naming it), a text that is no
//! UUID a 404 for the job or run, as the answer for an id that does not exist.

use scheduler_core::model::{JobId, RunId};
use scheduler_core::CoreError;

use crate::problem::Problem;
use crate::state::AppState;

/// The product/group's name for messages, or its 404.
fn group(state: &AppState, product: &str, job_group: &str) -> Result<String, Problem> {
    match state.scheduler.registry().lookup(product, job_group) {
        Some(entry) => Ok(entry.group.to_string()),
        None => Err(Problem::from(CoreError::GroupNotFound {
            product: product.chars().take(64).collect(),
            job_group: job_group.chars().take(64).collect(),
        })),
    }
}

/// A job of a product/group named in a path.
pub fn job(state: &AppState, product: &str, job_group: &str, raw: &str) -> Result<JobId, Problem> {
    let group = group(state, product, job_group)?;
    raw.parse::<JobId>()
        .map_err(|_| Problem::from(CoreError::JobNotFound { id: raw.chars().take(64).collect(), group }))
}

/// A run of a product/group named in a path.
pub fn run(state: &AppState, product: &str, job_group: &str, raw: &str) -> Result<RunId, Problem> {
    let group = group(state, product, job_group)?;
    raw.parse::<RunId>()
        .map_err(|_| Problem::from(CoreError::RunNotFound { id: raw.chars().take(64).collect(), group }))
}

/// A run named without its product/group (`/api/runs/{runId}`).
pub fn any_run(raw: &str) -> Result<RunId, Problem> {
    raw.parse::<RunId>().map_err(|_| {
        Problem::from(CoreError::RunNotFound { id: raw.chars().take(64).collect(), group: "any group".into() })
    })
}
