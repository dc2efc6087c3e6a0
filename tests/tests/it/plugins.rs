//! Loading real plugin libraries: refusals name the file and the reason; the host starts with
//! the good ones; `--strict-plugins` makes a refusal fatal.

use std::time::Duration;

use harness::{instant_in, PluginDir, Server, ServerOptions, VM};
use serde_json::json;

fn mixed_dir() -> PluginDir {
    let d = PluginDir::with(&["vps4_backups", "noop"]);
    // Named to load after the example plugin, so it is the duplicate that gets refused.
    d.add("fixture_duplicate", "libzz_vps4_impostor.so");
    d.add("fixture_incompatible", "libfixture_incompatible.so");
    d.add("fixture_not_a_plugin", "libfixture_not_a_plugin.so");
    // The same library under a second name is loaded once.
    d.add("noop", "libnoop_again.so");
    d
}

#[test]
fn bad_plugins_are_refused_by_name_and_the_host_starts_with_the_good_ones() {
    let s = Server::start_with(ServerOptions::default().plugins(mixed_dir()));
    let logs = s.logs();
    let refused_line = |file: &str| {
        logs.lines()
            .find(|l| l.contains("refused") && l.contains(file))
            .unwrap_or_else(|| panic!("no refusal logged for {file}:\n{logs}"))
            .to_owned()
    };
    let dup = refused_line("libzz_vps4_impostor.so");
    assert!(dup.contains("vps4/backups") && dup.contains("libvps4_backups.so"), "{dup}");
    let incompatible = refused_line("libfixture_incompatible.so");
    assert!(incompatible.contains("interface does not match"), "{incompatible}");
    let not_plugin = refused_line("libfixture_not_a_plugin.so");
    assert!(not_plugin.contains("not a scheduler plugin"), "{not_plugin}");
    let again = refused_line("libnoop_again.so");
    assert!(again.contains("already loaded") && again.contains("libnoop.so"), "{again}");

    let root = s.get("/api/scheduler");
    assert_eq!(root.get("refusedPlugins").as_array().unwrap().len(), 4, "{}", root.text);
    let groups = root.get("groups").as_array().unwrap();
    let backups = groups.iter().find(|g| g["product"] == "vps4").unwrap();
    assert_eq!(backups["plugin"]["name"], "vps4-backups", "the first file keeps the group");
    // The good plugins work.
    let r = s.post_json("/api/scheduler/vps4/backups/jobs", &json!({"vmId": VM, "when": instant_in(0)}));
    assert_eq!(r.status, 201);
    let id = r.get("id").as_str().unwrap().to_owned();
    harness::wait_until("the backup to run", Duration::from_secs(20), || {
        (s.get(&format!("/api/scheduler/vps4/backups/jobs/{id}")).body["status"] == "completed").then_some(())
    });
}

#[test]
fn strict_plugins_makes_a_refusal_fatal_and_names_the_file() {
    let opts = ServerOptions::default().plugins(mixed_dir()).args(&["--strict-plugins"]);
    let (mut child, logs) = harness::spawn(&opts);
    let status = harness::wait_until("the server to exit", Duration::from_secs(60), || child.try_wait().ok().flatten());
    assert!(!status.success());
    harness::wait_for_line(&logs, "scheduler: ", Duration::from_secs(5));
    let out = logs.0.lock().unwrap().join("\n");
    assert!(out.contains("--strict-plugins") && out.contains("libfixture_incompatible.so"), "{out}");
}

#[test]
fn an_empty_plugin_directory_starts_a_server_with_no_groups() {
    let s = Server::start_with(ServerOptions::default().plugins(PluginDir::empty()));
    let root = s.get("/api/scheduler");
    assert_eq!(root.get("groups").as_array().unwrap().len(), 0);
    s.post_json("/api/scheduler/vps4/backups/jobs", &json!({"vmId": VM, "when": instant_in(0)}))
        .assert_problem(404, "vps4");
}

/// Whoever can replace a plugin file runs code as the service: files and directories other
/// users can write to, or that another user owns, are refused with the reason.
#[test]
fn plugins_other_users_could_change_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let set_mode =
        |p: &std::path::Path, mode: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(mode)).unwrap();
    let d = PluginDir::with(&["vps4_backups"]);
    // Copies, not the harness's hard links: their modes must not touch the built files.
    let world = d.path().join("libworld_writable.so");
    std::fs::copy(harness::plugin_lib("noop"), &world).unwrap();
    set_mode(&world, 0o666);
    let group = d.path().join("libgroup_writable.so");
    std::fs::copy(harness::plugin_lib("fixture_sleepy"), &group).unwrap();
    set_mode(&group, 0o664);
    let report = scheduler_core::plugin::load_plugins(d.path()).unwrap();
    let reason =
        |name: &str| report.refused.iter().find(|r| r.file.ends_with(name)).map(|r| r.to_string()).unwrap_or_default();
    assert!(reason("libworld_writable.so").contains("writable by every user"), "{:?}", report.refused);
    assert!(reason("libgroup_writable.so").contains("writable by its group"), "{:?}", report.refused);
    assert_eq!(report.refused.len(), 2, "the example plugin is trusted: {:?}", report.refused);
    assert!(report.registry.lookup("vps4", "backups").is_some());

    // Owned by another user (not root): refused. Changing the owner needs root, which the test
    // machines are; as another user the rule is covered by the loader's unit test.
    if unsafe { libc::geteuid() } == 0 {
        let owned = d.path().join("libowned_by_other.so");
        std::fs::copy(harness::plugin_lib("noop"), &owned).unwrap();
        set_mode(&owned, 0o644);
        std::os::unix::fs::chown(&owned, Some(4242), None).unwrap();
        let report = scheduler_core::plugin::load_plugins(d.path()).unwrap();
        let r = report.refused.iter().find(|r| r.file.ends_with("libowned_by_other.so")).expect("refused");
        assert!(r.reason.contains("uid 4242"), "{r}");
    }

    // A directory anyone can write to refuses everything in it, naming the directory.
    set_mode(d.path(), 0o777);
    let err = scheduler_core::plugin::load_plugins(d.path()).unwrap_err().to_string();
    assert!(err.contains("plugin directory") && err.contains(&d.path().display().to_string()), "{err}");
    set_mode(d.path(), 0o700);
}
