//! One run's lifecycle on a worker: open its span, ask the veto listeners, call the job,
//! and turn what came back into a completion for the store.

use abi_stable::sabi_trait::TD_Opaque;
use scheduler_plugin_api::abi::{outcome, verdict, RunContext_TO};

use crate::clock::Ts;
use crate::engine::cancel::CancelFlag;
use crate::engine::runtime::Runtime;
use crate::plugin::context::{FollowUp, HostRunContext};
use crate::store::{Claimed, Ending, RunFinish};

/// The span every log record of a run is emitted in.
fn run_span(run: &Claimed) -> tracing::Span {
    let span = tracing::info_span!(
        "run",
        run_id = %run.run_id,
        job_id = %run.job_id,
        attempt = run.attempt,
        trace_id = %run.trace_id,
        node = %run.node,
        product = run.group.product(),
        job_group = run.group.job_group(),
    );
    crate::run_span::opened(&span, run.trace_id);
    span
}

/// The completion of `run`, started at `started_at`, ended at `finished_at` as `ending`.
fn finish_of(
    rt: &Runtime,
    run: &Claimed,
    (started_at, finished_at): (Ts, Ts),
    ending: Ending,
    listener_error: Option<String>,
) -> RunFinish {
    // Text the store keeps: without NUL characters (which PostgreSQL text cannot hold).
    let ending = match ending {
        Ending::Succeeded { output } => Ending::Succeeded { output },
        Ending::Failed { error, retry_at } => Ending::Failed { error: no_nul(error), retry_at },
        Ending::Vetoed { reason } => Ending::Vetoed { reason: no_nul(reason) },
        Ending::Cancelled { reason, requeue } => Ending::Cancelled { reason: no_nul(reason), requeue },
    };
    RunFinish {
        token: run.token,
        limited: !rt.max_running.is_empty() && rt.max_running.iter().any(|(g, _)| *g == run.group),
        run_id: run.run_id,
        job_id: run.job_id,
        started_at,
        finished_at,
        ending,
        listener_error: listener_error.map(no_nul),
    }
}

/// A run asked to stop while it waited for a worker: it ends `cancelled` without calling the
/// job or its listeners. Stopped by this node's shutdown (`requeue`), its job runs again.
pub(crate) fn cancelled_before_start(rt: &Runtime, run: &Claimed, started_at: Ts, requeue: bool) -> RunFinish {
    let span = run_span(run);
    let _entered = span.enter();
    tracing::info!(requeue, "run cancelled before it started");
    let ending = Ending::Cancelled { reason: "cancelled before it started".to_owned(), requeue };
    finish_of(rt, run, (started_at, rt.clock.now()), ending, None)
}

/// Executes one claimed run whose start is recorded (at `started_at`) and describes how it
/// ended. Never panics into the worker: plugin code catches its own panics (the export macro),
/// and a missing job type is a failed run.
pub(crate) fn execute(rt: &Runtime, run: &Claimed, started_at: Ts, cancel: &CancelFlag) -> RunFinish {
    let span = run_span(run);
    let _entered = span.enter();

    let Some(entry) = rt.registry.get(&run.group) else {
        let error = format!("no plugin on node {} registers {}", run.node, run.group);
        tracing::error!(error = %error, "run failed");
        return finish_of(rt, run, (started_at, rt.clock.now()), Ending::Failed { error, retry_at: None }, None);
    };

    let follow_up = FollowUpFor { rt, run };
    let ctx = HostRunContext::new(
        run.job_id,
        run.run_id,
        run.trace_id,
        run.attempt,
        run.scheduled_for.as_millis(),
        &run.payload,
        cancel,
        &follow_up,
    );

    let mut listener_errors: Vec<String> = Vec::new();
    for l in &entry.listeners {
        let v = l.plugin.instance.veto(l.index, RunContext_TO::from_ptr(&ctx, TD_Opaque));
        match v.code {
            verdict::ALLOW => {}
            verdict::VETO => {
                tracing::info!(listener = %l.name, reason = %v.reason, "run vetoed");
                let reason = format!("vetoed by {}: {}", l.name, v.reason);
                return finish_of(
                    rt,
                    run,
                    (started_at, rt.clock.now()),
                    Ending::Vetoed { reason },
                    join(listener_errors),
                );
            }
            _ => {
                tracing::warn!(listener = %l.name, error = %v.reason, "veto listener failed; the run goes ahead");
                listener_errors.push(format!("{}: {}", l.name, v.reason));
            }
        }
    }

    let out = entry.plugin.instance.run(entry.index, RunContext_TO::from_ptr(&ctx, TD_Opaque));
    // One reading of the clock for the end: a retry is due exactly its wait after it.
    let ended = rt.clock.now();
    let ending = match out.code {
        outcome::SUCCEEDED => {
            tracing::debug!("run succeeded");
            Ending::Succeeded { output: out.output_json.into_option().and_then(|s| storable_output(s.into_string())) }
        }
        outcome::CANCELLED => {
            // Cancelled by this node's shutdown, not by a client: the job runs again elsewhere.
            let requeue = cancel.is_set() && rt.is_stopping();
            tracing::info!(requeue, "run cancelled");
            Ending::Cancelled { reason: non_empty(out.message.into_string(), "cancelled"), requeue }
        }
        code => {
            let retry_at = if matches!(code, outcome::RETRYABLE | outcome::PANICKED) && !cancel.is_set() {
                // Errors the job says may pass, and panics, are retried while attempts remain.
                retry_instant(ended, entry, run, out.retry_after_ms.into_option())
            } else {
                None
            };
            let message = out.message.into_string();
            let error = match code {
                outcome::PANICKED => format!("the job panicked: {message}"),
                outcome::INVALID_REQUEST => format!("the stored request does not fit the job type: {message}"),
                outcome::RETRYABLE | outcome::PERMANENT => non_empty(message, "the job failed"),
                other => format!("the job returned an unknown outcome code {other}: {message}"),
            };
            tracing::warn!(error = %error, "run failed");
            Ending::Failed { error, retry_at }
        }
    };
    finish_of(rt, run, (started_at, ended), ending, join(listener_errors))
}

/// When a failed run (ended at `ended`) has its next attempt due, if its retry policy allows
/// one: after the wait the job asked for, else the policy's backoff.
fn retry_instant(ended: Ts, entry: &crate::plugin::JobTypeEntry, run: &Claimed, asked_ms: Option<u64>) -> Option<Ts> {
    let policy = run.retry.clone().or_else(|| Runtime::default_retry(entry))?;
    // No number of attempts of its own: the job type's, as this node knows it.
    let attempts = policy.attempts.map_or(entry.options.max_attempts.unwrap_or(1), std::num::NonZeroU32::get);
    if run.attempt >= attempts {
        return None;
    }
    let wait = match asked_ms {
        Some(ms) => std::time::Duration::from_millis(ms),
        None => policy.backoff.delay(run.attempt, fastrand::f64()),
    };
    let at = ended.plus_micros(i64::try_from(wait.as_micros()).unwrap_or(i64::MAX));
    tracing::info!(retry_at = %at, attempts, "the run failed; it will be retried");
    Some(at)
}

/// A job's output as the store keeps it: a JSON document without NUL characters, else nothing
/// (the run still succeeded; the output is dropped with a warning).
fn storable_output(text: String) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) if crate::request::check_storable(&v).is_ok() => Some(text),
        Ok(_) => {
            tracing::warn!("the job's output contains a NUL character; it is not stored");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the job's output is not JSON; it is not stored");
            None
        }
    }
}

/// Plugin text as the store keeps it: NUL characters (which PostgreSQL text cannot hold) dropped.
fn no_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

fn join(errors: Vec<String>) -> Option<String> {
    (!errors.is_empty()).then(|| errors.join("; "))
}

fn non_empty(s: String, default: &str) -> String {
    if s.is_empty() {
        default.to_owned()
    } else {
        s
    }
}

/// `ctx.schedule` for a run: a new job of the run's product and group.
struct FollowUpFor<'a> {
    rt: &'a Runtime,
    run: &'a Claimed,
}

impl FollowUp for FollowUpFor<'_> {
    fn schedule(&self, when_ms: i64, payload_json: &str) -> Result<String, String> {
        self.rt
            .create_follow_up(&self.run.group, when_ms, payload_json)
            .map(|job| job.id.to_string())
            .map_err(|e| e.to_string())
    }
}
