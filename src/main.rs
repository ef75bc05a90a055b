//! The `basalt` command: serve (the default), migrate, openapi.

use std::process::ExitCode;

use basalt::config::Settings;
use basalt::platform::db;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "basalt",
    version,
    about = "Backend-as-a-Service and marketplace backend in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply the enabled domains' migrations and exit.
    Migrate,
    /// Print the OpenAPI document of the enabled domains as JSON.
    Openapi,
}

fn main() -> ExitCode {
    basalt::platform::memory::map_large_blocks_apart();
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("basalt: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("basalt: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("basalt: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `text` to stdout; a reader that went away (`basalt openapi | head`) is not an
/// error: Rust ignores SIGPIPE, so `println!` would panic on the broken pipe instead of the
/// quiet exit shell users expect.
fn print_quietly(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Openapi => {
            let enabled = basalt::enabled_domains(&settings, &[])?;
            let doc = basalt::platform::openapi::document(&enabled);
            print_quietly(&doc.to_pretty_json()?)?;
        }
        Command::Migrate => {
            basalt::telemetry::init(&settings.log);
            let enabled = basalt::enabled_domains(&settings, &[])?;
            let pool = db::connect(&settings.database).await?;
            db::migrate(&pool, &basalt::app_migration_targets(&enabled)).await?;
            println!(
                "migrated {} schemas at {}",
                enabled.len() + 1,
                db::describe(&settings.database)
            );
        }
        Command::Serve => {
            basalt::telemetry::init(&settings.log);
            let app = basalt::Application::build(settings).await?;
            tracing::info!(port = app.port(), "basalt is serving");
            app.run_until_stopped().await?;
        }
    }
    Ok(())
}
