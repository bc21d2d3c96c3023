//! `panorama-faults`: runs the fault harness and prints its JSON summary
//! on stdout; progress and the run directory go to stderr.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use panorama_faults::{Cli, Error};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PANORAMA_FAULTS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .init();
    let config = match cli.config(rand::random()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("panorama-faults: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("panorama-faults: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(panorama_faults::run(&config));
    match outcome {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            if summary.ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("panorama-faults: FAILED: {}", summary.failures.join("; "));
                ExitCode::from(1)
            }
        }
        Err(Error::Interrupted) => ExitCode::from(130),
        Err(error) => {
            eprintln!("panorama-faults: {error}");
            ExitCode::from(2)
        }
    }
}
