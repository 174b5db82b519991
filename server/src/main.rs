use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};
use server::{Application, Settings, admin, db, telemetry};

#[derive(Parser)]
#[command(version, about = "The API server and its administrative commands")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default): applies pending migrations first.
    Serve,
    /// Run background jobs from the Redis queue (REDIS_QUEUE_URL or REDIS_URL) until stopped.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI spec the server derives, as committed in openapi.json.
    Openapi,
    /// Create the superuser from ADMIN_NAME, ADMIN_EMAIL, ADMIN_USERNAME, ADMIN_PASSWORD.
    CreateSuperuser,
    /// Create the tier named by TIER_NAME.
    CreateTier,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        // Needs no configuration, and must not depend on it.
        println!("{}", server::spec_json());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let _log_writer = telemetry::init(settings.log_format);
    match run(command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Openapi => unreachable!("handled before configuration is read"),
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "serving; Swagger UI at /docs");
            app.run_until_stopped().await?;
        }
        Command::Worker => server::app::run_worker(settings).await?,
        Command::Migrate => {
            let db = db::connect(&settings.database_url).await?;
            Migrator::up(&db, None).await?;
            println!("migrations applied");
        }
        Command::CreateSuperuser => {
            let db = db::connect(&settings.database_url).await?;
            Migrator::up(&db, None).await?;
            let outcome = admin::create_superuser(&db, &settings).await?;
            println!("superuser {}: {outcome:?}", settings.admin.username);
        }
        Command::CreateTier => {
            let db = db::connect(&settings.database_url).await?;
            Migrator::up(&db, None).await?;
            let outcome = admin::create_tier(&db, &settings.tier_name).await?;
            println!("tier {}: {outcome:?}", settings.tier_name);
        }
    }
    Ok(())
}
