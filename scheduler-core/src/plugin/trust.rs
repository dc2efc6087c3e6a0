//! Which plugin files and directories the service trusts: plugins are code run in the
//! service's own process, so whoever can replace a plugin file can run code as the service.
//! A file or directory is refused when users other than its owner can write to it (group or
//! world write bit), or when it is owned by someone other than the user running the service or
//! root (root can change anything on the machine anyway; a root-owned, read-only plugin
//! directory is the usual deployment for an unprivileged service).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why `path` is not trusted, or None when it is. `what` names it in the reason.
pub fn untrusted(path: &Path, what: &str) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot inspect {what} {}: {e}", path.display())),
    };
    untrusted_meta(meta.uid(), meta.mode(), effective_uid()).map(|why| format!("{what} {} {why}", path.display()))
}

/// The rule on an owner and mode, for the service running as `me`.
pub(crate) fn untrusted_meta(owner: u32, mode: u32, me: u32) -> Option<String> {
    if mode & 0o002 != 0 {
        return Some(format!("is writable by every user (mode {:o}); run chmod o-w on it", mode & 0o7777));
    }
    if mode & 0o020 != 0 {
        return Some(format!("is writable by its group (mode {:o}); run chmod g-w on it", mode & 0o7777));
    }
    if owner != me && owner != 0 {
        return Some(format!(
            "is owned by uid {owner}, not by the user running the service (uid {me}) or root; \
             another user could replace it"
        ));
    }
    None
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::untrusted_meta;

    #[test]
    fn owner_and_write_bits_decide() {
        assert_eq!(untrusted_meta(1000, 0o100644, 1000), None);
        assert_eq!(untrusted_meta(0, 0o100755, 1000), None, "root-owned is trusted");
        assert!(untrusted_meta(1000, 0o100666, 1000).unwrap().contains("every user"));
        assert!(untrusted_meta(1000, 0o40775, 1000).unwrap().contains("its group"));
        assert!(untrusted_meta(1001, 0o100644, 1000).unwrap().contains("uid 1001"));
    }
}
