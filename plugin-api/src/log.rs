//! Forwards the plugin's `log` and `tracing` records to the host.
//!
//! A `cdylib` has its own copy of every static, including the global logger of `log` and the
//! global dispatcher of `tracing`: without this bridge a plugin's records would go nowhere.
//! The bridge is installed when the host instantiates the plugin. Records are forwarded on the
//! thread that produced them, so the host attaches a run's records to that run's span.
//! Spans opened inside plugin code are not forwarded; their events are.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use abi_stable::std_types::{RBox, RStr};
use tracing_core::{
    field::{Field, Visit},
    metadata::LevelFilter,
    span, Event, Interest, Level, Metadata, Subscriber,
};

use crate::abi::{level, HostApi_TO};

static HOST: OnceLock<Host> = OnceLock::new();

struct Host {
    api: HostApi_TO<'static, RBox<()>>,
    max: u8,
}

/// Installs the panic hook and the log and tracing bridges. Later calls change nothing.
pub(crate) fn install(api: HostApi_TO<'static, RBox<()>>) {
    let max = api.max_level().min(level::TRACE);
    if HOST.set(Host { api, max }).is_err() {
        return;
    }
    crate::export::install_panic_hook();
    if log::set_logger(&LogBridge).is_ok() {
        log::set_max_level(match max {
            level::OFF => log::LevelFilter::Off,
            level::ERROR => log::LevelFilter::Error,
            level::WARN => log::LevelFilter::Warn,
            level::INFO => log::LevelFilter::Info,
            level::DEBUG => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        });
    }
    // Fails when a dispatcher is already set (a plugin linked into a test binary): keep that one.
    let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(TracingBridge {
        next_span: AtomicU64::new(1),
    }));
}

fn emit(lvl: u8, target: &str, message: &str) {
    if let Some(host) = HOST.get() {
        if lvl <= host.max {
            host.api.log(lvl, RStr::from_str(target), RStr::from_str(message));
        }
    }
}

fn enabled(lvl: u8) -> bool {
    HOST.get().is_some_and(|h| lvl <= h.max)
}

struct LogBridge;

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        enabled(metadata.level() as u8)
    }

    fn log(&self, record: &log::Record<'_>) {
        let lvl = record.level() as u8;
        if enabled(lvl) {
            emit(lvl, record.target(), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn tracing_level(l: &Level) -> u8 {
    match *l {
        Level::ERROR => level::ERROR,
        Level::WARN => level::WARN,
        Level::INFO => level::INFO,
        Level::DEBUG => level::DEBUG,
        _ => level::TRACE,
    }
}

struct TracingBridge {
    next_span: AtomicU64,
}

impl Subscriber for TracingBridge {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_span() || enabled(tracing_level(metadata.level()))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match HOST.get().map_or(level::OFF, |h| h.max) {
            level::OFF => LevelFilter::OFF,
            level::ERROR => LevelFilter::ERROR,
            level::WARN => LevelFilter::WARN,
            level::INFO => LevelFilter::INFO,
            level::DEBUG => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let lvl = tracing_level(meta.level());
        if !enabled(lvl) {
            return;
        }
        let mut text = MessageWriter::default();
        event.record(&mut text);
        emit(lvl, meta.target(), &text.finish());
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// Formats an event as `message key=value key=value`.
#[derive(Default)]
struct MessageWriter {
    message: String,
    fields: String,
}

impl MessageWriter {
    fn finish(mut self) -> String {
        if !self.fields.is_empty() {
            if !self.message.is_empty() {
                self.message.push(' ');
            }
            self.message.push_str(&self.fields);
        }
        self.message
    }

    fn field(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{name}={value}");
    }
}

impl Visit for MessageWriter {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.field(field.name(), format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.field(field.name(), format_args!("{value:?}"));
        }
    }
}
