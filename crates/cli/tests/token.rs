//! `panorama token` through the real binary against a real PostgreSQL.

use std::process::{Command, Output};

use panorama_testkit::migrated_database;

fn panorama(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_panorama"))
        .args(args)
        .env("PANORAMA_DATABASE_URL", database_url)
        .env("PANORAMA_LOG", "warn")
        .env_remove("PANORAMA_CONFIG")
        .output()
        .expect("panorama runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_and_revoke_through_the_binary() {
    let (database, store) = migrated_database(2).await;
    let url = database.url.clone();
    let run = move |args: &'static [&'static str]| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || panorama(&url, args))
                .await
                .expect("task")
        }
    };

    let created = run(&["token", "create", "--role", "agent", "--name", "desk-12"]).await;
    assert!(created.status.success(), "{}", text(&created.stderr));
    let stdout = text(&created.stdout);
    let secret = stdout.trim_end_matches('\n');
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the secret on stdout: {stdout:?}"
    );
    assert!(secret.starts_with("pan_"), "{secret}");
    assert!(text(&created.stderr).contains("only this once"));
    let principal = store
        .authenticate(secret)
        .await
        .expect("query")
        .expect("the printed secret is the token");
    assert_eq!(principal.name, "desk-12");

    let again = run(&["token", "create", "--role", "admin", "--name", "desk-12"]).await;
    assert!(!again.status.success(), "one live token per name");
    let bad_role = run(&["token", "create", "--role", "root", "--name", "x"]).await;
    assert!(!bad_role.status.success());

    let listed = run(&["token", "list"]).await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    assert!(listing.starts_with("NAME"), "{listing}");
    let row = listing
        .lines()
        .find(|line| line.starts_with("desk-12"))
        .expect("listed");
    assert!(row.contains("agent"), "{row}");
    assert!(!listing.contains(secret), "never the secret");

    let revoked = run(&["token", "revoke", "--name", "desk-12"]).await;
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert_eq!(store.authenticate(secret).await.expect("query"), None);
    let twice = run(&["token", "revoke", "--name", "desk-12"]).await;
    assert!(!twice.status.success(), "nothing left to revoke");
    assert!(
        text(&twice.stderr).contains("no live token"),
        "{}",
        text(&twice.stderr)
    );
    let listed = run(&["token", "list"]).await;
    assert!(!text(&listed.stdout).contains("desk-12"));
}
