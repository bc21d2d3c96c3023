//! PostgreSQL over TLS: the `sslmode`, `sslrootcert`, `sslcert` and
//! `sslkey` parameters of the database URL, against a real server that
//! takes TLS connections only (`hostssl`), with a test CA's certificates
//! for 127.0.0.1 and localhost.

use panorama::{Options, ProcessRole};
use panorama_store::Store;
use panorama_testkit::{CLIENT_CERT_USER, PgTls, TestDatabase, postgres_tls};

/// A database of the TLS cluster, and its certificates.
fn database() -> (TestDatabase, &'static PgTls) {
    let cluster = postgres_tls();
    let database = cluster.create_database().expect("database");
    (database, cluster.tls().expect("a TLS cluster"))
}

/// `url` with `params` (`key=value&...`) as its query.
fn with(url: &str, params: &str) -> String {
    format!("{url}?{params}")
}

/// The error a store on `url` meets on its first connection.
async fn connect_error(url: &str) -> String {
    let store = Store::connect(url, 1).expect("the URL reads");
    match store.ping().await {
        Ok(()) => panic!("connected, but the connection should have been refused"),
        Err(error) => error.to_string(),
    }
}

/// Whether a store on `url` connects over TLS, as the server sees it.
async fn encrypted(url: &str) -> bool {
    let store = Store::connect(url, 1).expect("the URL reads");
    let transport = store.transport().await.expect("connects");
    if transport.tls {
        assert!(transport.version.is_some(), "{transport:?}");
    }
    transport.tls
}

fn path(path: &std::path::Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let (database, _) = database();
    assert!(encrypted(&with(&database.url, "sslmode=require")).await);
    // The key=value form reads the same.
    let port = postgres_tls().port();
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=postgres dbname={} sslmode=require",
        database.name
    );
    assert!(encrypted(&conninfo).await);
}

#[tokio::test]
async fn prefer_the_default_uses_tls_when_offered() {
    let (database, _) = database();
    assert!(encrypted(&database.url).await);
    assert!(encrypted(&with(&database.url, "sslmode=prefer")).await);
    assert!(encrypted(&with(&database.url, "sslmode=allow")).await);
}

#[tokio::test]
async fn disable_is_refused_by_a_tls_only_server() {
    let (database, _) = database();
    let error = connect_error(&with(&database.url, "sslmode=disable")).await;
    assert!(
        error.contains("no pg_hba.conf entry") && error.contains("no encryption"),
        "{error}"
    );
}

#[tokio::test]
async fn verify_full_accepts_the_servers_ca_and_name() {
    let (database, tls) = database();
    let root = path(&tls.root_cert);
    // 127.0.0.1: an IP address the certificate names.
    let url = with(
        &database.url,
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );
    assert!(encrypted(&url).await);
    // localhost: a DNS name it names, reached at 127.0.0.1.
    let by_name = format!(
        "postgres://postgres@localhost:{}/{}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={root}",
        postgres_tls().port(),
        database.name
    );
    assert!(encrypted(&by_name).await);
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_of_another_ca() {
    let (database, tls) = database();
    let url = with(
        &database.url,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            path(&tls.foreign_root_cert)
        ),
    );
    let error = connect_error(&url).await;
    assert!(
        error.contains("certificate verification failed (sslmode=verify-full)")
            && error.contains("not signed by a CA of sslrootcert"),
        "{error}"
    );
}

#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    let (database, tls) = database();
    let url = format!(
        "postgres://postgres@db.panorama.invalid:{}/{}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
        postgres_tls().port(),
        database.name,
        path(&tls.root_cert)
    );
    let error = connect_error(&url).await;
    assert!(
        error.contains("certificate verification failed (sslmode=verify-full)")
            && error.contains("not valid for name \"db.panorama.invalid\""),
        "{error}"
    );
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_name() {
    let (database, tls) = database();
    let port = postgres_tls().port();
    let other_name = |root: &std::path::Path| {
        format!(
            "postgres://postgres@db.panorama.invalid:{port}/{}?hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={}",
            database.name,
            path(root)
        )
    };
    assert!(encrypted(&other_name(&tls.root_cert)).await);
    let error = connect_error(&other_name(&tls.foreign_root_cert)).await;
    assert!(
        error.contains("certificate verification failed (sslmode=verify-ca)"),
        "{error}"
    );
}

#[tokio::test]
async fn require_with_a_root_file_checks_the_chain_as_libpq_does() {
    let (database, tls) = database();
    let url = with(
        &database.url,
        &format!(
            "sslmode=require&sslrootcert={}",
            path(&tls.foreign_root_cert)
        ),
    );
    let error = connect_error(&url).await;
    assert!(
        error.contains("certificate verification failed (sslmode=require)"),
        "{error}"
    );
}

#[tokio::test]
async fn the_system_roots_do_not_trust_a_private_ca() {
    let (database, _) = database();
    let error = connect_error(&with(&database.url, "sslrootcert=system")).await;
    // Either the system has roots, none of them the test CA, or it has
    // none at all: never a connection.
    assert!(
        error.contains("certificate verification failed (sslmode=verify-full)")
            || error.contains("no trusted root certificates"),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_certificate_logs_in_where_the_server_demands_one() {
    let (database, tls) = database();
    let url = format!(
        "postgres://{CLIENT_CERT_USER}@127.0.0.1:{}/{}?sslmode=verify-full&sslrootcert={}",
        postgres_tls().port(),
        database.name,
        path(&tls.root_cert)
    );
    let error = connect_error(&url).await;
    assert!(error.contains("certificate"), "{error}");
    let with_certificate = format!(
        "{url}&sslcert={}&sslkey={}",
        path(&tls.client_cert),
        path(&tls.client_key)
    );
    assert!(encrypted(&with_certificate).await);
}

#[tokio::test]
async fn an_unknown_sslmode_is_a_configuration_error() {
    let error = Store::connect(
        "postgres://postgres:hunter2@127.0.0.1:1/x?sslmode=verify-everything",
        1,
    )
    .expect_err("refused")
    .to_string();
    assert!(error.contains("sslmode \"verify-everything\""), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

/// The pool `serve` builds, its migrations and its change listener (a
/// connection of its own), all over TLS with full verification.
#[tokio::test]
async fn the_serve_pool_migrates_and_listens_over_tls() {
    let (database, tls) = database();
    let url = with(
        &database.url,
        &format!("sslmode=verify-full&sslrootcert={}", path(&tls.root_cert)),
    );
    let options = Options::new(&url, "127.0.0.1:9");
    let store = Store::connect_with(
        &options.database.url,
        &options.connect_settings(ProcessRole::All),
    )
    .expect("store");
    store.migrate().await.expect("migrations over TLS");
    assert!(store.migrations_current().await.expect("checks"));
    assert!(store.transport().await.expect("transport").tls);
    // The server refuses plaintext, so a listener is proof of TLS too.
    store.listen_changes().await.expect("a listener over TLS");
}
