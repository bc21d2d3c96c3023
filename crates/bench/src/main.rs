//! `panorama-bench`: the benchmark behind `make bench`. Starts a durable
//! private PostgreSQL, a Nisshi broker and `panorama serve` per role, runs
//! interleaved rounds of P (projector alone), B (binary COPY of the same
//! rows), E (end to end) and P2 (two projectors), single-event freshness,
//! idle CPU and the read routes against pgbench, prints the figures and
//! writes BENCHMARKS.md.
//!
//! `panorama-bench loadgen` is its HTTP load generator, run as a separate
//! process.

mod copy;
mod loadgen;
mod lockwaits;
mod options;
mod phases;
mod procstat;
mod reads;
mod report;
mod run;
mod sqlcapture;
mod stack;
mod statements;
mod stats;
mod targets;
mod workload;

use std::process::ExitCode;

use clap::Parser as _;

use crate::options::{Cli, Mode};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("panorama-bench: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.mode {
        Some(Mode::Loadgen(args)) => runtime.block_on(async {
            let token = std::env::var("PANORAMA_BENCH_TOKEN").unwrap_or_default();
            let workload = serde_json::from_str(&args.workload)?;
            let report =
                loadgen::run(&args.url, &token, workload, args.batch, args.clients).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }),
        None => runtime.block_on(run::run(&cli.bench)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("panorama-bench: {error:#}");
            ExitCode::from(1)
        }
    }
}
