//! `panorama-fuzz`: runs the fuzz targets for longer than `cargo test` does.
//!
//! ```text
//! panorama-fuzz [--seconds N] [--list] [TARGET...]
//! ```
//!
//! Every target (or those named) runs for N seconds (default 60, or
//! `FUZZ_SECONDS`), one after the other; the first failure is printed with
//! its shrunk input and the seed to replay it, and the exit code is 1.

use std::process::ExitCode;
use std::time::Instant;

use panorama_fuzz::targets::target;
use panorama_fuzz::{Budget, Session, TARGETS, Target};

const USAGE: &str = "usage: panorama-fuzz [--seconds N] [--list] [TARGET...]";

fn main() -> ExitCode {
    let mut seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|raw| raw.trim().parse().ok())
        .unwrap_or(60);
    let mut chosen: Vec<&'static Target> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => match args.next().and_then(|raw| raw.parse().ok()) {
                Some(n) => seconds = n,
                None => {
                    eprintln!("--seconds needs a whole number\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--list" => {
                for target in TARGETS {
                    println!("{:<14} {}", target.name, target.about);
                }
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            name => match target(name) {
                Some(target) => chosen.push(target),
                None => {
                    eprintln!("no fuzz target {name} (--list shows them)\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().collect();
    }
    for target in chosen {
        let started = Instant::now();
        let mut session = Session::new(target.name, Budget::seconds(seconds));
        match (target.run)(&mut session) {
            Ok(()) => println!(
                "{:<14} ok: {} inputs in {:.1} s",
                target.name,
                session.cases(),
                started.elapsed().as_secs_f64()
            ),
            Err(failure) => {
                eprintln!("{failure}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
