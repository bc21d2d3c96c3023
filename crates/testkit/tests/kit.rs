//! Tests of the test kit itself, against real PostgreSQL and Nisshi
//! processes.

use std::time::{Duration, Instant};

use panorama_testkit::{Broker, Engine, PgCluster, broker, eventually, postgres, random_name};

#[test]
fn random_name_has_prefix_underscore_and_ten_lowercase_alnum() {
    let name = random_name("evt");
    let (prefix, suffix) = name.split_once('_').expect("an underscore");
    assert_eq!(prefix, "evt");
    assert_eq!(suffix.len(), 10, "{name}");
    assert!(
        suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{name}"
    );
    assert_ne!(random_name("evt"), random_name("evt"));
    assert!(random_name("customer_events").starts_with("customer_events_"));
}

#[test]
#[should_panic(expected = "prefix")]
fn random_name_rejects_a_prefix_invalid_as_topic_name() {
    let _ = random_name("bad prefix");
}

#[test]
fn shared_cluster_gives_distinct_reachable_databases() {
    let cluster = postgres();
    assert!(std::ptr::eq(cluster, postgres()), "one cluster per process");
    assert!(cluster.port() > 0);

    let first = cluster.create_database().expect("first database");
    let second = cluster.create_database().expect("second database");
    assert_ne!(first.name, second.name);
    assert_eq!(
        first.url,
        format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            cluster.port(),
            first.name
        )
    );
    assert_eq!(cluster.url(&second.name), second.url);

    for db in [&first, &second] {
        let out = cluster.psql(&db.name, "select 1").expect("select 1");
        assert_eq!(out.trim(), "1");
        let current = cluster
            .psql(&db.name, "select current_database()")
            .expect("current_database");
        assert_eq!(current.trim(), db.name);
    }
}

#[test]
fn private_cluster_stops_and_starts_on_the_same_port() {
    let started = Instant::now();
    let cluster = PgCluster::private().expect("private cluster");
    eprintln!("private cluster started in {:?}", started.elapsed());
    let started = Instant::now();
    let db = cluster.create_database().expect("database");
    eprintln!("database created in {:?}", started.elapsed());
    cluster
        .psql(
            &db.name,
            "create table t (x int); insert into t values (42)",
        )
        .expect("write");
    let port = cluster.port();

    cluster.stop().expect("stop");
    assert!(
        cluster.psql(&db.name, "select 1").is_err(),
        "a stopped cluster must refuse connections"
    );

    let started = Instant::now();
    cluster.start().expect("start again");
    eprintln!("cluster restarted in {:?}", started.elapsed());
    assert_eq!(cluster.port(), port);
    let out = cluster
        .psql(&db.name, "select x from t")
        .expect("read after restart");
    assert_eq!(out.trim(), "42");
}

#[test]
fn a_durable_cluster_keeps_committed_rows_through_an_immediate_restart() {
    let cluster = PgCluster::durable().expect("durable cluster");
    assert!(cluster.is_durable());
    let db = cluster.create_database().expect("database");
    for setting in ["fsync", "synchronous_commit", "full_page_writes"] {
        let value = cluster
            .psql(&db.name, &format!("SHOW {setting}"))
            .expect("show");
        assert_eq!(value.trim(), "on", "{setting}");
    }
    cluster
        .psql(
            &db.name,
            "create table t (x int); insert into t values (42)",
        )
        .expect("write");
    let before = cluster.postmaster_pid().expect("a running postmaster");
    let port = cluster.port();

    let started = Instant::now();
    cluster.restart_immediate().expect("crash and restart");
    eprintln!("immediate restart took {:?}", started.elapsed());
    let after = cluster.postmaster_pid().expect("running again");
    assert_ne!(before, after, "a new postmaster");
    assert_eq!(cluster.port(), port);
    let out = cluster
        .psql(&db.name, "select x from t")
        .expect("read after the crash");
    assert_eq!(out.trim(), "42");
    let log = std::fs::read_to_string(cluster.log_path()).expect("server log");
    assert!(
        log.contains("not properly shut down"),
        "the restart ran crash recovery:\n{log}"
    );

    cluster.stop_immediate().expect("crash");
    assert_eq!(cluster.postmaster_pid(), None);
    assert!(cluster.psql(&db.name, "select 1").is_err());
}

#[test]
fn the_shared_cluster_runs_without_durability_for_speed() {
    let cluster = postgres();
    assert!(!cluster.is_durable());
    let db = cluster.create_database().expect("database");
    let fsync = cluster.psql(&db.name, "SHOW fsync").expect("show");
    assert_eq!(fsync.trim(), "off");
}

#[test]
fn shared_broker_starts_and_creates_topics() {
    let broker = broker();
    assert!(
        std::ptr::eq(broker, panorama_testkit::broker()),
        "one broker per process"
    );
    let bootstrap = broker.bootstrap();
    assert!(bootstrap.starts_with("127.0.0.1:"), "{bootstrap}");
    std::net::TcpStream::connect(&bootstrap).expect("broker accepts connections");

    broker
        .create_topic(&random_name("kit"), 3)
        .expect("create topic");
    broker
        .create_topic(&random_name("kit"), 1)
        .expect("create another topic");
}

#[test]
fn creating_an_existing_topic_fails() {
    let broker = broker();
    let topic = random_name("kit");
    broker.create_topic(&topic, 2).expect("create topic");
    assert!(broker.create_topic(&topic, 2).is_err());
}

#[test]
fn private_brokers_run_side_by_side() {
    let started = Instant::now();
    let first = Broker::start(Engine::Memory).expect("first broker");
    eprintln!("private broker started in {:?}", started.elapsed());
    let started = Instant::now();
    let second = Broker::start(Engine::Memory).expect("second broker");
    eprintln!("second private broker started in {:?}", started.elapsed());
    assert_ne!(first.bootstrap(), second.bootstrap());

    let topic = random_name("kit");
    first.create_topic(&topic, 1).expect("topic on first");
    // Separate brokers: the same name is free on the second.
    second.create_topic(&topic, 1).expect("topic on second");
}

#[test]
fn broker_restarts_on_the_same_port_and_keeps_sqlite_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::start(Engine::Sqlite(dir.path().join("broker.db"))).expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = random_name("kit");
    broker.create_topic(&topic, 2).expect("create topic");

    broker.kill();
    assert!(
        std::net::TcpStream::connect(&bootstrap).is_err(),
        "a killed broker must refuse connections"
    );

    let started = Instant::now();
    broker.restart().expect("restart");
    eprintln!("sqlite broker restarted in {:?}", started.elapsed());
    assert_eq!(broker.bootstrap(), bootstrap);
    assert!(dir.path().join("broker.db").is_file());
    // The topic survived the kill -9, so creating it again fails.
    assert!(broker.create_topic(&topic, 2).is_err());
    broker
        .create_topic(&random_name("kit"), 1)
        .expect("new topic after restart");
}

#[test]
fn dropping_a_broker_kills_it() {
    let broker = Broker::start(Engine::TempSqlite).expect("broker");
    let bootstrap = broker.bootstrap();
    drop(broker);
    assert!(std::net::TcpStream::connect(&bootstrap).is_err());
}

#[tokio::test]
async fn eventually_returns_the_value_once_check_succeeds() {
    let started = Instant::now();
    let mut calls = 0;
    let value = eventually("the third call", Duration::from_secs(5), || {
        calls += 1;
        let n = calls;
        async move { (n >= 3).then_some(n * 10) }
    })
    .await;
    assert_eq!(value, 30);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
#[should_panic(expected = "waiting for the impossible")]
async fn eventually_panics_naming_what_on_timeout() {
    eventually("the impossible", Duration::from_millis(100), || async {
        None::<()>
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "the last check had not finished")]
async fn eventually_panics_when_a_check_hangs() {
    eventually("a hanging check", Duration::from_millis(100), || {
        std::future::pending::<Option<()>>()
    })
    .await;
}
