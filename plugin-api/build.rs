//! Records the compiler version so a plugin's manifest can say what built it (diagnostic only).
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SCHEDULER_PLUGIN_API_RUSTC={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
