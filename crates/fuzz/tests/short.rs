//! The short run of every fuzz target inside `cargo test`: the seed corpus,
//! then about a second of generated inputs each, from a fixed seed per
//! target so the run cannot fail by chance (`make fuzz` explores from the
//! clock, for longer). A failure prints the shrunk input and the seed to
//! replay it.

use panorama_fuzz::targets::target;
use panorama_fuzz::{Budget, Session, TARGETS};

fn short_run(name: &str) {
    let target = target(name).unwrap_or_else(|| panic!("no fuzz target {name}"));
    let mut session = Session::repeatable(target.name, Budget::short());
    if let Err(failure) = (target.run)(&mut session) {
        panic!("{failure}");
    }
    assert!(session.cases() > 0, "{name} tried nothing");
}

#[test]
fn every_target_has_a_test_here_and_seeds_where_it_reads_them() {
    let tests = include_str!("short.rs");
    for target in TARGETS {
        assert!(
            tests.contains(&format!("short_run(\"{}\")", target.name)),
            "no short run of {}",
            target.name
        );
    }
    for name in [
        "twilio_voice",
        "cti",
        "sendgrid",
        "mailgun",
        "mime",
        "meta",
        "web_events",
        "segment",
        "multipart",
        "identifier",
        "contract_json",
    ] {
        assert!(
            !panorama_fuzz::driver::corpus(name).is_empty(),
            "no seeds in corpus/{name}"
        );
    }
}

#[test]
fn segment() {
    short_run("segment");
}

#[test]
fn twilio_voice() {
    short_run("twilio_voice");
}

#[test]
fn cti() {
    short_run("cti");
}

#[test]
fn sendgrid() {
    short_run("sendgrid");
}

#[test]
fn mailgun() {
    short_run("mailgun");
}

#[test]
fn mime() {
    short_run("mime");
}

#[test]
fn meta() {
    short_run("meta");
}

#[test]
fn web_events() {
    short_run("web_events");
}

#[test]
fn multipart() {
    short_run("multipart");
}

#[test]
fn signatures() {
    short_run("signatures");
}

#[test]
fn proto_decode() {
    short_run("proto_decode");
}

#[test]
fn identifier() {
    short_run("identifier");
}

#[test]
fn contract() {
    short_run("contract");
}

#[test]
fn contract_json() {
    short_run("contract_json");
}
