//! Logging: `tracing` to standard output, filtered by `RUST_LOG` (default `info`), as text or
//! JSON; with the `otlp` feature and `--otlp-endpoint`, spans are also exported over OTLP/HTTP.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

/// Keeps the exporter alive; dropping it flushes the spans not yet sent.
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    otlp: Option<otlp::Exporter>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(e) = self.otlp.take() {
            e.shutdown();
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber. Call once, before plugins are loaded (they read the level).
/// Fails when an OTLP endpoint is asked for and cannot be used.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_target(true).with_ansi(std::io::stdout().is_terminal());
    let fmt: BoxedLayer = match format {
        LogFormat::Text => Box::new(fmt),
        LogFormat::Json => Box::new(fmt.json().with_current_span(true).with_span_list(false)),
    };
    #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
    let mut layers = vec![fmt];
    #[cfg(feature = "otlp")]
    let exporter = match otlp_endpoint {
        Some(url) => {
            let (exporter, layer) = otlp::Exporter::start(url)?;
            layers.push(layer);
            Some(exporter)
        }
        None => None,
    };
    #[cfg(not(feature = "otlp"))]
    if let Some(url) = otlp_endpoint {
        anyhow::bail!("--otlp-endpoint {url}: this build has no OTLP exporter (build with `--features otlp`)");
    }
    let _ = tracing_subscriber::registry().with(layers).with(filter).try_init();
    Ok(Telemetry {
        #[cfg(feature = "otlp")]
        otlp: exporter,
    })
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
    use opentelemetry::Context;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::BoxedLayer;

    pub struct Exporter {
        provider: SdkTracerProvider,
    }

    /// The traces URL for an endpoint: `/v1/traces` unless the URL names its own path.
    pub fn traces_url(endpoint: &str) -> String {
        let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
        if rest.trim_end_matches('/').contains('/') {
            endpoint.to_owned()
        } else {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        }
    }

    impl Exporter {
        pub fn start(endpoint: &str) -> anyhow::Result<(Exporter, BoxedLayer)> {
            let url = traces_url(endpoint);
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(&url)
                .build()
                .map_err(|e| anyhow::anyhow!("--otlp-endpoint {endpoint}: {e}"))?;
            let resource = Resource::builder()
                .with_service_name("scheduler")
                .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build();
            let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("scheduler"));
            scheduler_core::run_span::set_hook(adopt_trace_id);
            tracing::info!(url, "exporting spans over OTLP");
            Ok((Exporter { provider }, Box::new(layer)))
        }

        pub fn shutdown(self) {
            if let Err(e) = self.provider.shutdown() {
                eprintln!("scheduler: flushing OTLP spans failed: {e}");
            }
        }
    }

    /// Makes a run's trace id the trace id of its span: the span's parent is a remote context
    /// with that trace id, so the run's spans are found by the id the API shows.
    fn adopt_trace_id(span: &tracing::Span, trace_id: scheduler_core::model::TraceId) {
        let parent = SpanContext::new(
            TraceId::from_bytes(trace_id.0.to_be_bytes()),
            // The remote parent is never exported; its id only has to be valid (non-zero).
            SpanId::from_bytes((trace_id.0 as u64).max(1).to_be_bytes()),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
    }

    #[cfg(test)]
    mod tests {
        use super::traces_url;

        #[test]
        fn the_traces_path_is_added_to_a_bare_endpoint() {
            assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
            assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
            assert_eq!(traces_url("http://c:4318/custom/traces"), "http://c:4318/custom/traces");
        }
    }
}
