//! The agent console in a real browser: a headless Chromium (Debian's
//! `chromium`, driven through `chromedriver` over WebDriver) against the
//! whole application, fed by the traffic simulator through the real
//! webhooks. An agent signs in, finds a simulated customer by phone, scrolls
//! through the whole timeline, resolves one of their cases, then works a
//! hand-made customer whose card shows every signal: resolves a case, sees
//! a new contact arrive live, opens a screen-pop URL for an unknown caller
//! and writes the first note, and opens the ops view; nothing is loaded from
//! anywhere but Panorama.
//!
//! A second test checks the card's contact preferences and the follow-up
//! tasks the customer refused.
//!
//! The tests leave screenshots of the customer card in
//! `target/test-artifacts/` (`console.png`, `console-consent.png`).

#[path = "support/webdriver.rs"]
mod webdriver;

use chrono::{Duration, Utc};
use panorama_core::Role;
use panorama_e2e::contact_with;
use panorama_testkit::{Burst, TestApp};
use serde_json::{Value, json};
use webdriver::Browser;

/// The customer the test works with.
const ANNA_PHONE: &str = "+31612345678";
const ANNA_EMAIL: &str = "anna.devries@example.nl";

/// The simulated traffic: its seed, people and requests.
const SIMULATION: (u64, usize, u64) = (7, 4, 240);

/// A simulated person with an open case, as the console should show them.
struct Simulated {
    phone: String,
    name: String,
    /// Timeline entries.
    entries: usize,
    /// The reason of one of their open cases.
    reason: String,
}

/// The simulated person with the longest history who still has an open
/// case and a display name.
async fn busiest_simulated_customer(app: &TestApp, burst: &Burst) -> Simulated {
    let mut best: Option<Simulated> = None;
    for person in &burst.customers {
        let phone = person.phone.replace('+', "%2B");
        let response = app
            .get(&format!("/v1/customers/lookup?phone={phone}"))
            .await;
        if response.status() != 200 {
            continue;
        }
        let profile: Value = response.json().await.expect("profile");
        let Some(reason) = profile["open_cases"]
            .as_array()
            .and_then(|cases| cases.iter().find_map(|case| case["reason"].as_str()))
        else {
            continue;
        };
        let id = profile["id"].as_str().expect("id");
        let timeline = app
            .get_json(&format!("/v1/customers/{id}/timeline?limit=200"))
            .await;
        let entries = timeline["entries"].as_array().map_or(0, Vec::len);
        let name = profile["display_name"].as_str().unwrap_or_default();
        if !name.is_empty() && best.as_ref().is_none_or(|best| entries > best.entries) {
            best = Some(Simulated {
                phone: person.phone.clone(),
                name: name.to_owned(),
                entries,
                reason: reason.to_owned(),
            });
        }
    }
    best.expect("a simulated customer with an open case")
}

/// Seeds a few customers with multi-channel histories, and returns how
/// many events were posted.
async fn seed(app: &TestApp) -> i64 {
    let hours_ago = |hours: i64| Utc::now() - Duration::hours(hours);
    let anna = [("phone", ANNA_PHONE), ("email", ANNA_EMAIL)];
    let parcel = "My replacement phone has not arrived";
    let mut events = Vec::new();
    let mut call = contact_with("anna-call-1", hours_ago(72), "phone", &anna);
    call["display_name"] = json!("Anna de Vries");
    call["contact_reason"] = json!(parcel);
    call["duration_seconds"] = json!(420);
    call["queue"] = json!("orders");
    call["summary"] = json!("Ordered a replacement on the 3rd; tracking shows no movement.");
    events.push(call);
    let mut mail = contact_with(
        "anna-mail-1",
        hours_ago(30),
        "email",
        &[("email", ANNA_EMAIL)],
    );
    mail["contact_reason"] = json!(parcel);
    mail["subject"] = json!("Where is my replacement?");
    mail["summary"] = json!("Still nothing after three days. Can you check with the courier?");
    events.push(mail);
    let mut whatsapp = contact_with(
        "anna-wa-1",
        hours_ago(3),
        "social",
        &[("phone", ANNA_PHONE), ("whatsapp", "31612345678")],
    );
    whatsapp["source"] = json!("meta.whatsapp");
    whatsapp["contact_reason"] = json!(parcel);
    whatsapp["summary"] = json!("Hi, any news on my parcel?");
    events.push(whatsapp);
    let mut form = contact_with("anna-web-1", hours_ago(200), "web", &anna);
    form["contact_reason"] = json!("Change my delivery address");
    form["type"] = json!("form.submitted");
    events.push(form);
    events.push(json!({
        "event_id": "anna-nps-1", "occurred_at": hours_ago(100).to_rfc3339(), "channel": "email",
        "type": "feedback.submitted", "identifiers": [{"kind": "email", "value": ANNA_EMAIL}],
        "feedback": {"metric": "nps", "score": 6, "comment": "Slow delivery"}
    }));
    events.push(json!({
        "event_id": "anna-csat-1", "occurred_at": hours_ago(99).to_rfc3339(), "channel": "phone",
        "type": "feedback.submitted", "identifiers": [{"kind": "phone", "value": ANNA_PHONE}],
        "feedback": {"metric": "csat", "score": 3}
    }));
    for (index, (name, phone, channel)) in [
        ("Bram Visser", "+31611112222", "phone"),
        ("Chloé Martin", "+31633334444", "chat"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut event = contact_with(
            &format!("other-{index}"),
            hours_ago(10 + index as i64),
            channel,
            &[("phone", phone)],
        );
        event["display_name"] = json!(name);
        event["contact_reason"] = json!("Invoice question");
        events.push(event);
    }
    let count = events.len() as i64;
    let response = app.post_events(&json!({ "events": events })).await;
    assert_eq!(
        response.status(),
        202,
        "{}",
        response.text().await.unwrap_or_default()
    );
    count
}

/// Every resource the page loaded came from `origin`.
async fn assert_same_origin(browser: &Browser, origin: &str) {
    let loaded = browser
        .run(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            json!([]),
        )
        .await;
    let foreign: Vec<&Value> = loaded
        .as_array()
        .expect("a list")
        .iter()
        .filter(|name| !name.as_str().unwrap_or_default().starts_with(origin))
        .collect();
    assert!(foreign.is_empty(), "loaded from elsewhere: {foreign:?}");
    let page = browser.run("return location.origin", json!([])).await;
    assert_eq!(page, json!(origin));
}

fn artifact_path(name: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir.join(name)
}

/// Writes a PNG of the page to `target/test-artifacts/<name>`.
async fn save_screenshot(browser: &Browser, name: &str, what: &str) {
    let path = artifact_path(name);
    std::fs::write(&path, browser.screenshot().await).expect("write the screenshot");
    println!("screenshot of {what}: {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_a_customer_in_the_console() {
    let app = TestApp::builder().simulated_channels().spawn().await;
    let agent = app.token(Role::Agent).await;
    let (seed_value, people, requests) = SIMULATION;
    let burst = app.simulate_burst(seed_value, people, requests).await;
    let seeded = seed(&app).await;
    app.wait_for_events(burst.expectation.events as i64 + seeded)
        .await;
    let Simulated {
        phone,
        name,
        entries,
        reason,
    } = busiest_simulated_customer(&app, &burst).await;
    assert!(
        entries > 25,
        "a history longer than one page of the console: {entries}"
    );
    let origin = app.base_url.clone();
    let browser = Browser::start(1366, 768).await;

    // Sign in: a wrong token is refused with a message, the agent's works.
    browser.goto(&format!("{origin}/")).await;
    let token = browser.find("#token").await;
    browser.type_into(&token, "pan_not_a_token").await;
    browser
        .click(&browser.find("#signin-form button").await)
        .await;
    browser
        .wait_for(
            "the refusal of a wrong token",
            "const m = document.getElementById('signin-message'); \
             return !m.hidden && m.textContent.includes('refused')",
        )
        .await;
    browser.type_into(&token, &agent).await;
    browser
        .click(&browser.find("#signin-form button").await)
        .await;

    // A simulated customer: search by phone, scroll the whole history in
    // (pages of 25 as the end of the list comes into view), resolve a case.
    let search = browser.find("#search-value").await;
    browser.type_into(&search, &phone).await;
    browser.click(&browser.find("#search button").await).await;
    browser
        .wait_for(
            "the simulated customer's card",
            &format!(
                "const c = document.querySelector('[data-testid=customer-card]'); \
                 return c && c.textContent.includes({})",
                json!(name)
            ),
        )
        .await;
    browser
        .wait_for(
            &format!("all {entries} timeline entries, scrolled in"),
            &format!(
                "const shown = document.querySelectorAll('[data-testid=timeline-entry]'); \
                 shown[shown.length - 1]?.scrollIntoView(); \
                 return shown.length === {entries}"
            ),
        )
        .await;
    let open_case = "[data-testid=case][data-status=open]";
    let this_case = format!(
        "[...document.querySelectorAll('{open_case}')].find(c => c.textContent.includes({}))",
        json!(reason)
    );
    browser
        .run(
            &format!("{this_case}.querySelector('[data-testid=resolve-toggle]').click()"),
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the resolve form",
            &format!("return !!{this_case}?.querySelector('input[name=outcome]')"),
        )
        .await;
    browser
        .run(
            &format!(
                "const form = {this_case}.querySelector('[data-testid=resolve-form]'); \
                 form.querySelector('input[name=outcome]').value = 'Solved on the phone'; \
                 form.querySelector('button[type=submit]').click()"
            ),
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the simulated customer's case shown resolved",
            "return [...document.querySelectorAll('[data-testid=case][data-status=resolved]')]\
             .some(c => c.textContent.includes('Solved on the phone'))",
        )
        .await;
    save_screenshot(&browser, "console-simulated.png", "a simulated customer").await;

    // A hand-made customer: search by phone, the card and the timeline.
    browser.type_into(&search, ANNA_PHONE).await;
    browser.click(&browser.find("#search button").await).await;
    browser
        .wait_for(
            "Anna's card",
            "const c = document.querySelector('[data-testid=customer-card]'); \
             return c && c.textContent.includes('Anna de Vries')",
        )
        .await;
    browser
        .wait_for(
            "Anna's six events in the timeline",
            "return document.querySelectorAll('[data-testid=timeline-entry]').length === 6",
        )
        .await;
    let card = browser
        .run(
            "return document.querySelector('[data-testid=customer-card]').innerText",
            json!([]),
        )
        .await;
    let card = card.as_str().unwrap_or_default();
    for shown in [
        "Repeat contact",
        "Channel hop",
        ANNA_EMAIL,
        "NPS",
        "CSAT",
        "Normal priority",
    ] {
        assert!(card.contains(shown), "the card shows {shown}:\n{card}");
    }
    browser
        .run("window.stillTheSamePage = true", json!([]))
        .await;
    browser
        .wait_for(
            "the live stream to connect",
            "return document.getElementById('live-state').dataset.state === 'live'",
        )
        .await;

    // Resolve the parcel case: an empty outcome is refused next to the
    // field, then it resolves and the page shows it.
    browser
        .wait_for(
            "the open parcel case",
            &format!(
                "return [...document.querySelectorAll('{open_case}')]\
                 .some(c => c.textContent.includes('replacement phone'))"
            ),
        )
        .await;
    browser
        .click(
            &browser
                .find(&format!("{open_case} [data-testid=resolve-toggle]"))
                .await,
        )
        .await;
    let submit = browser
        .find(&format!(
            "{open_case} [data-testid=resolve-form] button[type=submit]"
        ))
        .await;
    browser.click(&submit).await;
    browser
        .wait_for(
            "the problem shown next to the outcome field",
            &format!(
                "const f = document.querySelector('{open_case} [data-testid=resolve-form]'); \
                 const e = f.querySelector('input[name=outcome]'); \
                 const slot = document.getElementById(e.id + '-error'); \
                 return e.getAttribute('aria-invalid') === 'true' && !slot.hidden && slot.textContent"
            ),
        )
        .await;
    let outcome = browser
        .find(&format!(
            "{open_case} [data-testid=resolve-form] input[name=outcome]"
        ))
        .await;
    browser.type_into(&outcome, "Replacement sent").await;
    browser.click(&submit).await;
    browser
        .wait_for(
            "the case shown resolved",
            "return [...document.querySelectorAll('[data-testid=case][data-status=resolved]')]\
             .some(c => c.textContent.includes('Replacement sent'))",
        )
        .await;

    // A new contact arrives live, without a reload, and is announced.
    let mut message = contact_with(
        "anna-wa-live",
        Utc::now(),
        "social",
        &[("whatsapp", "31612345678")],
    );
    message["source"] = json!("meta.whatsapp");
    message["contact_reason"] = Value::Null;
    message["summary"] = json!("Thanks, it just arrived!");
    let response = app.post_events(&message).await;
    assert_eq!(response.status(), 202);
    browser
        .wait_for(
            "the live contact at the top of the timeline",
            "const first = document.querySelector('[data-testid=timeline-entry]'); \
             return first && first.textContent.includes('Thanks, it just arrived!')",
        )
        .await;
    browser
        .wait_for(
            "the polite announcement",
            "return document.getElementById('live').textContent.includes('New Social contact')",
        )
        .await;
    assert_eq!(
        browser
            .run("return window.stillTheSamePage === true", json!([]))
            .await,
        json!(true),
        "the page was not reloaded"
    );
    save_screenshot(&browser, "console.png", "the customer card").await;
    assert_same_origin(&browser, &origin).await;

    // Screen pop for an unknown number: an empty card, then a first note
    // creates the customer.
    browser
        .goto(&format!("{origin}/?phone=%2B31687654321"))
        .await;
    browser
        .wait_for(
            "the empty card of the unknown caller",
            "const c = document.querySelector('[data-testid=unknown-card]'); \
             return c && c.textContent.includes('+31687654321')",
        )
        .await;
    let note = browser
        .find("[data-testid=first-note-form] textarea[name=text]")
        .await;
    browser
        .type_into(&note, "Called about a delivery to a new address.")
        .await;
    browser
        .click(
            &browser
                .find("[data-testid=first-note-form] button[type=submit]")
                .await,
        )
        .await;
    browser
        .wait_for(
            "the new customer's card with the note",
            "const c = document.querySelector('[data-testid=customer-card]'); \
             return c && c.textContent.includes('+31687654321') && \
             [...document.querySelectorAll('[data-testid=timeline-entry]')]\
             .some(e => e.textContent.includes('new address'))",
        )
        .await;
    save_screenshot(&browser, "console-new-caller.png", "the new caller's card").await;
    assert_same_origin(&browser, &origin).await;

    // A web form (public write key) names Anna's address and another
    // number: it shows on her timeline with the number marked claimed, and
    // the agent who checked it with her confirms it.
    let claimed_phone = "+31687654399";
    let before = app.store.totals().await.expect("totals").events;
    let form = app
        .request(reqwest::Method::POST, "/v1/channels/web/events", None)
        .header("origin", panorama_simulator::DemoSecrets::WEB_ORIGIN)
        .header(
            "x-panorama-write-key",
            panorama_simulator::DemoSecrets::WEB_WRITE_KEY,
        )
        .json(&json!({
            "type": "form.submitted",
            "event_id": "anna-web-claim",
            "form": {"fields": {"email": ANNA_EMAIL, "phone": claimed_phone,
                                "message": "Please call me on my work number"}}
        }))
        .send()
        .await
        .expect("answer");
    assert_eq!(response_status(form).await, 200);
    app.wait_for_events(before + 1).await;
    browser
        .goto(&format!(
            "{origin}/?email={}",
            ANNA_EMAIL.replace('@', "%40")
        ))
        .await;
    browser
        .wait_for(
            "the form's claimed number on Anna's timeline",
            &format!(
                "return [...document.querySelectorAll('[data-testid=entry-claim]')]\
                 .some(c => c.textContent.includes({0}) && \
                      c.querySelector('[data-testid=claimed]'))",
                json!(claimed_phone)
            ),
        )
        .await;
    assert_eq!(
        browser
            .run(
                &format!(
                    "return [...document.querySelectorAll('[data-testid=customer-card] li')]\
                     .some(li => li.textContent.includes({}))",
                    json!(claimed_phone)
                ),
                json!([]),
            )
            .await,
        json!(false),
        "a claim is not one of her identifiers"
    );
    browser
        .run(
            &format!(
                "[...document.querySelectorAll('[data-testid=entry-claim]')]\
                 .find(c => c.textContent.includes({}))\
                 .querySelector('[data-testid=confirm-identifier]').click()",
                json!(claimed_phone)
            ),
            json!([]),
        )
        .await;
    app.wait_for_events(before + 2).await;
    browser
        .goto(&format!(
            "{origin}/?email={}",
            ANNA_EMAIL.replace('@', "%40")
        ))
        .await;
    browser
        .wait_for(
            "the confirmed number on Anna's card, verified",
            &format!(
                "return [...document.querySelectorAll('[data-testid=customer-card] li[data-trust=verified]')]\
                 .some(li => li.textContent.includes({}))",
                json!(claimed_phone)
            ),
        )
        .await;
    save_screenshot(&browser, "console-claimed.png", "a confirmed claim").await;
    assert_same_origin(&browser, &origin).await;

    // The ops view draws the insights.
    browser.click(&browser.find("#nav-ops").await).await;
    browser
        .wait_for(
            "the charts",
            "return document.querySelector('[data-testid=chart-channels] rect') && \
             document.querySelector('[data-testid=gauge-fcr]') && \
             document.querySelector('[data-testid=gauge-nps]')",
        )
        .await;
    save_screenshot(&browser, "console-ops.png", "the ops view").await;
    assert_same_origin(&browser, &origin).await;
    drop(browser);
    app.stop().await;
}

/// The card shows what the customer said about being contacted, and a
/// follow-up task on a channel the customer refused is marked; an agent
/// records a new preference from the console and both change live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_shows_consent_and_marks_refused_follow_ups() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent).await;
    let phone = "+31655556666";
    let email = "eva.jansen@example.nl";
    let hours_ago = |hours: i64| Utc::now() - Duration::hours(hours);
    let mut call = contact_with(
        "eva-call",
        hours_ago(5),
        "phone",
        &[("phone", phone), ("email", email)],
    );
    call["display_name"] = json!("Eva Jansen");
    let preferences = json!({
        "event_id": "eva-prefs", "occurred_at": hours_ago(4).to_rfc3339(), "channel": "web",
        "source": "preferences", "type": "consent.updated",
        "identifiers": [{"kind": "email", "value": email}],
        "consent": [
            {"channel": "email", "purpose": "marketing", "granted": false},
            {"channel": "email", "purpose": "service", "granted": false},
            {"channel": "phone", "purpose": "service", "granted": true}
        ]
    });
    let response = app
        .post_events(&json!({"events": [call, preferences]}))
        .await;
    assert_eq!(response.status(), 202);
    app.wait_for_events(2).await;
    let id = app
        .get_json(&format!("/v1/customers/lookup?email={email}"))
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let due = (Utc::now() + Duration::days(1)).to_rfc3339();
    for (title, channel) in [
        ("Send the signed form", "email"),
        ("Call back about the meter", "phone"),
    ] {
        let response = app
            .request(
                reqwest::Method::POST,
                &format!("/v1/customers/{id}/tasks"),
                Some(&agent),
            )
            .json(&json!({"title": title, "due_at": due, "channel": channel}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 202);
    }
    app.wait_for_events(4).await;

    let origin = app.base_url.clone();
    let browser = Browser::start(1366, 768).await;
    browser
        .goto(&format!("{origin}/?phone=%2B31655556666"))
        .await;
    browser
        .type_into(&browser.find("#token").await, &agent)
        .await;
    browser
        .click(&browser.find("#signin-form button").await)
        .await;
    browser
        .wait_for(
            "Eva's card with her preferences",
            "const c = document.querySelector('[data-testid=customer-card]'); \
             return c && c.textContent.includes('Eva Jansen') && \
             c.querySelector('[data-testid=consent-statement][data-channel=email]\
             [data-purpose=marketing][data-granted=false]') && \
             c.querySelector('[data-testid=consent-statement][data-channel=phone]\
             [data-purpose=service][data-granted=true]')",
        )
        .await;
    let card = browser
        .run(
            "return document.querySelector('[data-testid=customer-card]').innerText",
            json!([]),
        )
        .await;
    let card = card.as_str().unwrap_or_default();
    // Headings are upper case on screen.
    for shown in [
        "contact preferences",
        "email · marketing",
        "phone · service",
        "refused",
        "allowed",
    ] {
        assert!(
            card.to_lowercase().contains(shown),
            "the card shows {shown}:\n{card}"
        );
    }
    let follow_ups = browser
        .run(
            "return document.querySelector('[data-testid=follow-up-refused]')?.innerText ?? ''",
            json!([]),
        )
        .await;
    assert!(
        follow_ups
            .as_str()
            .is_some_and(|text| text.contains("Email") && !text.contains("Phone")),
        "the follow-ups the customer refused: {follow_ups}"
    );
    let task_marked = |title: &str| {
        format!(
            "return [...document.querySelectorAll('[data-testid=tasks] li')]\
             .find(li => li.textContent.includes({}))?.querySelector('[data-testid=task-refused]') ? 'marked' : \
             ([...document.querySelectorAll('[data-testid=tasks] li')].some(li => li.textContent.includes({0})) \
              ? 'plain' : 'absent')",
            json!(title)
        )
    };
    browser
        .wait_for(
            "the email follow-up marked refused",
            &format!(
                "return (() => {{ {} }})() === 'marked'",
                task_marked("Send the signed form")
            ),
        )
        .await;
    assert_eq!(
        browser
            .run(&task_marked("Call back about the meter"), json!([]))
            .await,
        json!("plain"),
        "calls are allowed"
    );

    // Eva now says no calls either; the agent records it from the console.
    browser
        .click(&browser.find("[data-testid=consent-toggle]").await)
        .await;
    browser
        .run(
            "const f = document.querySelector('[data-testid=consent-form]'); \
             f.querySelector('select[name=channel]').value = 'phone'; \
             f.querySelector('select[name=purpose]').value = 'service'; \
             f.querySelector('select[name=granted]').value = 'false'; \
             f.querySelector('input[name=note]').value = 'said so on the phone'; \
             f.querySelector('button[type=submit]').click()",
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the new refusal on the card and the call marked",
            &format!(
                "const c = document.querySelector('[data-testid=customer-card]'); \
                 return c.querySelector('[data-testid=consent-statement][data-channel=phone]\
                 [data-purpose=service][data-granted=false]') && \
                 (() => {{ {} }})() === 'marked'",
                task_marked("Call back about the meter")
            ),
        )
        .await;
    save_screenshot(&browser, "console-consent.png", "a customer's consent").await;
    assert_same_origin(&browser, &origin).await;
    drop(browser);
    app.stop().await;
}

async fn response_status(response: reqwest::Response) -> u16 {
    let status = response.status().as_u16();
    if status != 200 {
        eprintln!("{}", response.text().await.unwrap_or_default());
    }
    status
}
