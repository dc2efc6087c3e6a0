//! `scheduler`: the service binary.

use std::process::ExitCode;

use clap::Parser;
use scheduler_web::config::Cli;
use scheduler_web::startup::Application;
use scheduler_web::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.serve.log_format);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(cli.serve)?;
        app.run_until_stopped().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("scheduler: {e:#}");
            ExitCode::FAILURE
        }
    }
}
