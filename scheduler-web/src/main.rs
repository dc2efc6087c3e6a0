//! `scheduler`: the service binary.

use std::process::ExitCode;

use clap::Parser;
use scheduler_web::config::{Cli, Command, DbArgs};
use scheduler_web::startup::Application;
use scheduler_web::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = match telemetry::init(cli.serve.log_format, cli.serve.otlp_endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("scheduler: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::Migrate(db)) => migrate(&db),
        None => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(cli.serve)?;
            app.run_until_stopped().await
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("scheduler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `scheduler migrate`: applies pending migrations and says what it did.
fn migrate(db: &DbArgs) -> anyhow::Result<()> {
    let pg = scheduler_web::startup::open_postgres(db)?;
    let report = pg.migrate()?;
    if report.applied.is_empty() {
        println!("the database schema is current; nothing to apply");
    } else {
        println!("applied migrations: {}", report.applied.join(", "));
    }
    Ok(())
}
