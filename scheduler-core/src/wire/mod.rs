//! The request model every entry point reads: the REST routes, the schedules file, and the
//! ones to come. One type per request (`JobRequest` to create, `RescheduleRequest` to change a
//! schedule), each key with the type of its value, read with the path of a wrong value; the
//! rules that tie keys together (one schedule at a time, `until` after the start, ...) turn a
//! request into the core's validated types in `request.rs`.

mod body;
pub mod fields;
pub mod values;

pub use body::{
    BackoffRequest, JobRequest, RescheduleRequest, ScheduleFields, ScheduleRequest, TriggerRequest, TRIGGER_KEYS,
};
pub use values::{read, MAX_TRIGGERS};
