//! One test binary: API end-to-end tests against the real server, plugin loading with real
//! libraries, lifecycle (shutdown, logs), and the store conformance suite.

/// Instantiates each named test, a `fn(Backend)`, once per store.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[test]
                fn $name() {
                    super::$name(harness::Backend::Memory)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(harness::Backend::Postgres)
                }
            )*
        }
    };
}

mod api;
mod bulk;
mod clock;
mod cluster;
mod control;
mod declared;
mod durable;
mod lifecycle;
mod limits;
mod liveness;
mod operating;
mod plugins;
mod schedules;
mod security;
mod store_conformance;
mod tls;
