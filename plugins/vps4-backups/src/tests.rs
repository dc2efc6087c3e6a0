use scheduler_plugin_api::testing::TestRun;

use super::*;

const VM: &str = "79bfd10c-1529-42de-bd68-1a6e084ee13d";

#[test]
fn a_backup_reports_the_vm_it_backed_up() {
    let run = TestRun::new(&format!(r#"{{"vmId":"{VM}"}}"#));
    let out = run.execute(&Vps4BackupJob).expect("backup succeeds");
    let out = format!("{out:?}");
    assert!(out.contains(VM), "{out}");
}

#[test]
fn a_request_without_a_uuid_vm_id_is_rejected_naming_the_field() {
    let err = TestRun::new(r#"{"vmId":"not-a-uuid"}"#).validate(&Vps4BackupJob).unwrap_err();
    assert!(err.starts_with("vmId: "), "{err}");
    let err = TestRun::new(r#"{}"#).validate(&Vps4BackupJob).unwrap_err();
    assert!(err.contains("vmId"), "{err}");
}

#[test]
fn a_zero_follow_up_delay_is_rejected() {
    let err =
        TestRun::new(&format!(r#"{{"vmId":"{VM}","scheduleNextInSeconds":0}}"#)).validate(&Vps4BackupJob).unwrap_err();
    assert!(err.starts_with("scheduleNextInSeconds"), "{err}");
}

#[test]
fn a_backup_schedules_its_next_run_through_the_context() {
    let run = TestRun::new(&format!(r#"{{"vmId":"{VM}","scheduleNextInSeconds":3600}}"#));
    run.execute(&Vps4BackupJob).expect("backup succeeds");
    let scheduled = run.scheduled();
    assert_eq!(scheduled.len(), 1);
    assert!(scheduled[0].1.contains(VM));
}

#[test]
fn the_listener_vetoes_only_the_nil_vm() {
    let nil = TestRun::new(r#"{"vmId":"00000000-0000-0000-0000-000000000000"}"#);
    assert!(matches!(nil.veto(&Vps4BackupTriggerListener), Verdict::Veto(_)));
    let real = TestRun::new(&format!(r#"{{"vmId":"{VM}"}}"#));
    assert_eq!(real.veto(&Vps4BackupTriggerListener), Verdict::Allow);
}
