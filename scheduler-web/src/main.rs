//! `scheduler`: the service binary.

use std::process::ExitCode;

use clap::Parser;
use scheduler_web::config::{Cli, Command, DbArgs, TokenCommand};
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
        Some(Command::Token(TokenCommand::New { name, scopes })) => token_new(&name, &scopes),
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

/// `scheduler token new`: a new token, printed once, and its tokens-file entry.
fn token_new(name: &str, scopes: &[String]) -> anyhow::Result<()> {
    use scheduler_web::auth::{tokens, Scope};
    anyhow::ensure!(!name.trim().is_empty(), "--name is empty");
    let scopes = scopes.iter().map(|s| Scope::parse(s)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let (token, hash) = tokens::generate().map_err(anyhow::Error::msg)?;
    println!("token (shown once; give it to {name} and keep it secret):\n\n    {token}\n");
    println!("add to the tokens file (--auth-tokens):\n\n{}", tokens::entry(name, &hash, &scopes));
    Ok(())
}
