//! Structured logging.

use tracing_subscriber::EnvFilter;

/// JSON logs to stderr, filtered by `RUST_LOG` (default `info`);
/// `SWITCHYARD_LOG_FORMAT=text` gives human-readable lines for local runs.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::env::var("SWITCHYARD_LOG_FORMAT").as_deref() == Ok("text") {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}
