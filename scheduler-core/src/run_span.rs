//! A hook given each run's span before it is entered, so an exporter can tie the span to the
//! run's trace id (the OTLP exporter of the service makes it the span's trace id).

use std::sync::OnceLock;

use crate::model::TraceId;

/// Called with each run's span and trace id, before the span is entered.
pub type RunSpanHook = fn(&tracing::Span, TraceId);

static HOOK: OnceLock<RunSpanHook> = OnceLock::new();

/// Installs the hook for the life of the process; a second call is ignored.
pub fn set_hook(hook: RunSpanHook) {
    let _ = HOOK.set(hook);
}

/// Hands a new run span to the hook, if one is installed.
pub(crate) fn opened(span: &tracing::Span, trace_id: TraceId) {
    if let Some(hook) = HOOK.get() {
        hook(span, trace_id);
    }
}
