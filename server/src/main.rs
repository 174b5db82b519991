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

fn main() -> ExitCode {
    // Before the runtime starts its threads.
    return_large_blocks_to_the_system();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run_cli()),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_cli() -> ExitCode {
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

/// glibc serves a large allocation with its own mapping, returned on free, until the first such
/// free: then it raises the threshold to that size and keeps later ones in its heap, for good.
/// Each password hash takes about 19 MiB, so one burst of logins left the process 40 MiB
/// bigger for the rest of its life. A fixed threshold keeps large blocks returnable.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const LARGE_BLOCK_BYTES: libc::c_int = 1024 * 1024;
        // SAFETY: mallopt only changes allocator parameters; it is called before any thread
        // but this one exists, and a refusal (return 0) leaves the defaults in place.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES);
        }
    }
}
