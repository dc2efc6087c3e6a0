//! The JSON shapes of the API (camelCase, instants in UTC with `Z` and milliseconds).

use scheduler_core::model::{Job, Run};
use scheduler_core::plugin::{JobTypeEntry, LoadedPlugin, Refusal};
use scheduler_core::store::NodeRecord;
use scheduler_core::trigger::{BackoffKind, MisfirePolicy, OverlapPolicy, ScheduleSpec, Trigger, TriggerState};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One trigger of a job: its schedule, its limits and its progress.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerDto {
    /// `once`, `cron` or `interval`.
    #[schema(example = "cron")]
    pub r#type: &'static str,
    /// The one-time instant (type `once`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub when: Option<String>,
    /// The cron pattern (type `cron`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA time zone of the cron pattern.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The period in seconds (type `interval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<f64>,
    /// The first fire of an interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub start: Option<String>,
    /// Disabled triggers do not fire.
    pub enabled: bool,
    /// `fireOnce`, `skip` or `fireAll`.
    pub misfire: &'static str,
    /// Fires at most this many times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_count: Option<u64>,
    /// Fires no later than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// Keys merged into the payload of the runs it fires.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub data: Option<Value>,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its next fire, or null when it will not fire again.
    #[schema(format = DateTime, nullable)]
    pub next_run: Option<String>,
    /// How many of its fires have come due.
    pub fired: u64,
}

/// A job's retry policy.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryDto {
    /// Attempts per fire, the first included; null: the job type's default.
    #[schema(nullable)]
    pub attempts: Option<u32>,
    /// `fixed` or `exponential`.
    pub backoff: &'static str,
    /// The first wait in milliseconds.
    pub delay_ms: u64,
    /// Exponential growth per attempt.
    pub factor: f64,
    /// The longest wait in milliseconds.
    pub cap_ms: u64,
    /// Whether waits are randomised.
    pub jitter: bool,
}

/// A job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobDto {
    /// The job's id.
    #[schema(format = Uuid)]
    pub id: String,
    pub product: String,
    pub job_group: String,
    /// The instant it is scheduled for.
    #[schema(format = DateTime)]
    pub when: String,
    /// Its next fire, or null when none is pending (finished, or running without a new `when`).
    #[schema(format = DateTime, nullable)]
    pub next_run: Option<String>,
    /// `scheduled`, `running`, `paused`, `completed`, `failed`, `vetoed` or `cancelled`.
    #[schema(example = "scheduled")]
    pub status: &'static str,
    /// Whether the job is paused.
    pub is_paused: bool,
    /// The request as the job receives it: `when`, `jobType` and the payload keys.
    #[schema(value_type = Object)]
    pub job_request: Value,
    /// Its triggers, with their next fires.
    pub triggers: Vec<TriggerDto>,
    /// `skip`, `queue` or `allow`: what a fire does while the previous run still runs.
    pub overlap: &'static str,
    /// Higher runs first when more are due than workers are free.
    pub priority: i16,
    /// Its retry policy (null: its job type's).
    #[schema(nullable)]
    pub retry: Option<RetryDto>,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it last changed.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Its latest run (on `GET` of one job, once it has run): how it ended, and its error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Box<RunDto>>,
}

impl From<&Job> for JobDto {
    fn from(j: &Job) -> Self {
        let when = j.when().to_rfc3339();
        let mut request = Map::new();
        request.insert("when".into(), Value::String(when.clone()));
        request.insert("jobType".into(), Value::String(j.spec.job_type().into()));
        if let Ok(Value::Object(payload)) = serde_json::from_str::<Value>(&j.payload) {
            for (k, v) in payload {
                request.entry(k).or_insert(v);
            }
        }
        JobDto {
            id: j.id.to_string(),
            product: j.group.product().to_owned(),
            job_group: j.group.job_group().to_owned(),
            when,
            next_run: j.next_run.map(|t| t.to_rfc3339()),
            status: j.status_name(),
            is_paused: j.paused,
            job_request: Value::Object(request),
            triggers: j
                .spec
                .triggers
                .iter()
                .zip(j.state.triggers.iter().chain(std::iter::repeat(&TriggerState::default())))
                .map(|(t, st)| TriggerDto::from_trigger(t, st))
                .collect(),
            overlap: match j.spec.overlap {
                OverlapPolicy::Skip => "skip",
                OverlapPolicy::Queue => "queue",
                OverlapPolicy::Allow => "allow",
            },
            priority: j.spec.priority,
            retry: j.spec.retry.as_ref().map(|r| RetryDto {
                attempts: r.attempts.map(std::num::NonZeroU32::get),
                backoff: match r.backoff.kind {
                    BackoffKind::Fixed => "fixed",
                    BackoffKind::Exponential => "exponential",
                },
                delay_ms: r.backoff.base_ms,
                factor: r.backoff.factor,
                cap_ms: r.backoff.cap_ms,
                jitter: r.backoff.jitter,
            }),
            created_at: j.created_at.to_rfc3339(),
            updated_at: j.updated_at.to_rfc3339(),
            last_run: None,
        }
    }
}

impl TriggerDto {
    fn from_trigger(t: &Trigger, st: &TriggerState) -> TriggerDto {
        let (kind, when, cron, timezone, interval, start) = match &t.schedule {
            ScheduleSpec::Once { when } => ("once", Some(when.to_rfc3339()), None, None, None, None),
            ScheduleSpec::Cron { expr, timezone } => {
                ("cron", None, Some(expr.clone()), Some(timezone.clone()), None, None)
            }
            ScheduleSpec::Interval { every_ms, start } => {
                ("interval", None, None, None, Some(*every_ms as f64 / 1000.0), Some(start.to_rfc3339()))
            }
        };
        TriggerDto {
            r#type: kind,
            when,
            cron,
            timezone,
            interval_seconds: interval,
            start,
            enabled: t.enabled,
            misfire: match t.misfire {
                MisfirePolicy::FireOnce => "fireOnce",
                MisfirePolicy::Skip => "skip",
                MisfirePolicy::FireAll => "fireAll",
            },
            repeat_count: t.repeat_count,
            until: t.until.map(|u| u.to_rfc3339()),
            data: t.data.clone().map(Value::Object),
            name: t.name.clone(),
            next_run: st.next.map(|n| n.to_rfc3339()),
            fired: st.fired,
        }
    }
}

/// One run (execution) of a job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunDto {
    /// The run's id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Its job.
    #[schema(format = Uuid)]
    pub job_id: String,
    /// The job's product.
    pub product: String,
    /// The job's group.
    pub job_group: String,
    /// 1 for the first attempt of a fire.
    pub attempt: u32,
    /// When it was due.
    #[schema(format = DateTime)]
    pub scheduled_for: String,
    /// When a worker began it (null while it is only claimed).
    #[schema(format = DateTime, nullable)]
    pub started_at: Option<String>,
    /// When it finished.
    #[schema(format = DateTime, nullable)]
    pub finished_at: Option<String>,
    /// The node that ran it.
    pub node: String,
    /// `claimed` (waiting for a worker of its node), `running`, `succeeded`, `failed`, `vetoed`,
    /// `cancelled`, `abandoned` or `skipped`.
    #[schema(example = "succeeded")]
    pub outcome: &'static str,
    /// The error (failed, cancelled) or the veto reason (vetoed).
    #[schema(nullable)]
    pub error: Option<String>,
    /// The trace id in the run's log records (32 hex digits).
    pub trace_id: String,
    /// The JSON output of a successful run, if the job returned one.
    #[schema(value_type = Object, nullable)]
    pub output: Option<Value>,
    /// Veto listeners that failed while asked about this run (the run went ahead).
    #[schema(nullable)]
    pub listener_error: Option<String>,
    /// The trigger that fired it (its index in the job's `triggers`); null for run-now.
    #[schema(nullable)]
    pub trigger: Option<u32>,
    /// Why it ran as it did (a catch-up for missed fires, a run-now request).
    #[schema(nullable)]
    pub note: Option<String>,
}

impl From<&Run> for RunDto {
    fn from(r: &Run) -> Self {
        RunDto {
            id: r.id.to_string(),
            job_id: r.job_id.to_string(),
            product: r.group.product().to_owned(),
            job_group: r.group.job_group().to_owned(),
            attempt: r.attempt,
            scheduled_for: r.scheduled_for.to_rfc3339(),
            started_at: r.started_at.map(|t| t.to_rfc3339()),
            finished_at: r.finished_at.map(|t| t.to_rfc3339()),
            node: r.node.to_string(),
            outcome: r.outcome.as_str(),
            error: r.error.clone(),
            trace_id: r.trace_id.to_string(),
            output: r.output.as_deref().and_then(|s| serde_json::from_str(s).ok()),
            listener_error: r.listener_error.clone(),
            trigger: r.trigger,
            note: r.note.clone(),
        }
    }
}

/// A loaded plugin library.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginDto {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The file it was loaded from.
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The scheduler-plugin-api version it was built against.
    pub api_version: String,
    /// The compiler that built it.
    pub rustc: String,
}

impl From<&LoadedPlugin> for PluginDto {
    fn from(p: &LoadedPlugin) -> Self {
        PluginDto {
            name: p.name.clone(),
            version: p.version.clone(),
            file: p.file.display().to_string(),
            sha256: p.sha256.clone(),
            api_version: p.api_version.clone(),
            rustc: p.rustc.clone(),
        }
    }
}

/// A registered product and job group.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupDto {
    pub product: String,
    pub job_group: String,
    /// The job type's name.
    pub job_type: String,
    /// The plugin that registered it.
    pub plugin: PluginDto,
    /// The group's veto listeners, in the order they are asked.
    pub listeners: Vec<String>,
    /// Whether interrupted runs of this type are re-run after a node dies.
    pub requests_recovery: bool,
}

impl From<&JobTypeEntry> for GroupDto {
    fn from(e: &JobTypeEntry) -> Self {
        GroupDto {
            product: e.group.product().to_owned(),
            job_group: e.group.job_group().to_owned(),
            job_type: e.name.clone(),
            plugin: PluginDto::from(&*e.plugin),
            listeners: e.listeners.iter().map(|l| l.name.clone()).collect(),
            requests_recovery: e.options.requests_recovery,
        }
    }
}

/// A plugin file that was not loaded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusalDto {
    pub file: String,
    /// Why it was refused.
    pub reason: String,
}

impl From<&Refusal> for RefusalDto {
    fn from(r: &Refusal) -> Self {
        RefusalDto { file: r.file.display().to_string(), reason: r.reason.clone() }
    }
}

/// What this node hosts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerDto {
    /// The registered product/group pairs.
    pub groups: Vec<GroupDto>,
    /// The loaded plugins.
    pub plugins: Vec<PluginDto>,
    /// Plugin files that were refused at start.
    pub refused_plugins: Vec<RefusalDto>,
    /// This node's name.
    pub node: String,
    /// The service version.
    pub version: String,
    /// The plugin ABI version this service loads.
    pub plugin_abi: String,
}

/// A node: one process of the service, sharing the store with the others.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeDto {
    /// Unique per process start: host name and a start id.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// The product/groups it has plugins for (`product/group`): it claims only these.
    pub groups: Vec<String>,
    /// When it started.
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Its last heartbeat (database clock).
    #[schema(format = DateTime)]
    pub heartbeat_at: String,
    /// When it stopped, or was declared dead.
    #[schema(format = DateTime, nullable)]
    pub stopped_at: Option<String>,
    /// Not stopped and heartbeating.
    pub live: bool,
}

impl From<&NodeRecord> for NodeDto {
    fn from(n: &NodeRecord) -> Self {
        NodeDto {
            id: n.info.id.to_string(),
            host: n.info.host.clone(),
            groups: n.info.groups.iter().map(|g| g.to_string()).collect(),
            started_at: n.started_at.to_rfc3339(),
            heartbeat_at: n.heartbeat_at.to_rfc3339(),
            stopped_at: n.stopped_at.map(|t| t.to_rfc3339()),
            live: n.live,
        }
    }
}

/// What applying the schedules file did, by declaration key (the schema of
/// `scheduler_core::ApplyReport`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documents the response; the handler serialises the core type
pub struct ApplyReportDto {
    /// Jobs created.
    pub created: Vec<String>,
    /// Jobs whose declaration changed, updated (their schedule starts again).
    pub updated: Vec<String>,
    /// Jobs already as declared, or finished.
    pub unchanged: Vec<String>,
    /// Jobs no longer declared, deleted.
    pub removed: Vec<String>,
    /// Declarations for product/groups this node has no plugin for.
    pub skipped: Vec<String>,
}
