//! The plan is a pure function of its options: reproducible, different per
//! seed, valid for the gateway for any seed and any set of channels, and
//! its predicted counts do not depend on how the projector batches.

use std::collections::BTreeSet;

use panorama_core::cases::CaseRules;
use panorama_core::identity::IdentityRules;
use proptest::prelude::*;

use super::*;
use crate::predict::{Grouping, events, expect_with};
use crate::projection::Projection;

fn options(seed: u64, customers: usize, providers: BTreeSet<Provider>) -> PlanOptions {
    PlanOptions {
        seed,
        customers,
        providers,
        start: fixed_start(),
        history: chrono::Duration::days(10),
        rate: 5.0,
    }
}

fn all() -> BTreeSet<Provider> {
    Provider::ALL.into_iter().collect()
}

fn take(options: &PlanOptions, count: usize) -> Vec<PlannedEvent> {
    Plan::new(options.clone()).take(count).collect()
}

#[test]
fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
    let first = take(&options(7, 20, all()), 400);
    let again = take(&options(7, 20, all()), 400);
    assert_eq!(first, again);
    let other = take(&options(8, 20, all()), 400);
    assert_ne!(first, other);
    assert_eq!(
        Plan::new(options(7, 20, all())).customers(),
        Plan::new(options(7, 20, all())).customers()
    );
}

#[test]
fn a_plan_has_every_provider_merges_cases_and_a_live_part() {
    let planned = take(&options(11, 30, all()), 1500);
    let providers: BTreeSet<Provider> = planned.iter().map(|e| e.provider).collect();
    assert_eq!(providers, all(), "every provider is used");
    assert!(
        planned.iter().any(|e| e.live),
        "the plan goes on after the history"
    );
    assert!(
        planned.windows(2).all(|pair| pair[0].at <= pair[1].at),
        "in time order"
    );
    let expectation = expect(&planned, None).expect("valid plan");
    assert!(expectation.merges > 0, "{expectation:?}");
    assert!(expectation.cases > 0, "{expectation:?}");
    assert!(expectation.customers <= expectation.profiles);
    assert!(expectation.events >= planned.len() - 10, "{expectation:?}");
}

#[test]
fn live_events_follow_the_rate() {
    let mut plan_options = options(3, 50, all());
    plan_options.history = chrono::Duration::zero();
    plan_options.rate = 2.0;
    let planned = take(&plan_options, 2000);
    let span = (planned[planned.len() - 1].at - planned[0].at).num_seconds() as f64;
    let rate = planned.len() as f64 / span;
    assert!(
        (0.5..=8.0).contains(&rate),
        "about 2 per second, got {rate}"
    );
}

#[test]
fn the_live_part_starts_when_the_history_ends() {
    let plan_options = options(9, 50, all());
    let end = fixed_start() + plan_options.history;
    let planned = take(&plan_options, 3000);
    let first_live = planned.iter().find(|e| e.live).expect("a live part");
    assert!(
        first_live.at - end < chrono::Duration::minutes(5),
        "live from {end}, first live request at {}",
        first_live.at
    );
}

#[test]
fn channels_parse_by_name_and_group() {
    let phone = Provider::parse_list("phone, survey").expect("list");
    assert_eq!(
        phone,
        [Provider::Twilio, Provider::Cti, Provider::Survey]
            .into_iter()
            .collect()
    );
    assert_eq!(Provider::parse_list("all").expect("all"), all());
    assert!(Provider::parse_list("fax").is_err());
    assert!(Provider::parse_list(" ,").is_err());
}

#[test]
fn webhooks_are_signed_so_the_gateway_accepts_them() {
    let credentials = DemoSecrets::credentials(Some("pan_x".into()));
    let settings = DemoSecrets::channel_settings();
    for event in take(&options(5, 20, all()), 300) {
        let request =
            providers::webhook_request(&event, &credentials, event.at, &format!("n{}", event.seq));
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        match event.provider {
            Provider::Twilio => {
                let form = panorama_channels::form::Form::parse(&request.body).expect("form");
                let url = format!("{}{}", DemoSecrets::PUBLIC_URL, request.path);
                let token = settings.twilio_auth_token.as_deref().unwrap_or_default();
                panorama_channels::twilio::verify(&url, &form, header("x-twilio-signature"), token)
                    .expect("twilio signature");
            }
            Provider::Whatsapp | Provider::Instagram => panorama_channels::meta::verify(
                &request.body,
                header("x-hub-signature-256"),
                DemoSecrets::META_APP_SECRET,
            )
            .expect("meta signature"),
            Provider::Mailgun => {
                let outcome = panorama_channels::mailgun::parse(
                    "application/x-www-form-urlencoded",
                    &request.body,
                    DemoSecrets::MAILGUN_SIGNING_KEY,
                    &panorama_channels::Context {
                        received_at: event.at,
                        default_region: None,
                    },
                )
                .expect("mailgun signature");
                assert!(matches!(
                    outcome.outcome,
                    panorama_channels::Outcome::Events { .. }
                ));
            }
            // The shop's back end vouches with its channel token; a
            // browser has only the public write key.
            Provider::Web if matches!(event.payload, Payload::Backend(_)) => {
                assert_eq!(
                    header("authorization"),
                    Some(format!("Bearer {}", DemoSecrets::CHANNEL_TOKEN).as_str())
                );
                assert_eq!(header("x-panorama-write-key"), None);
            }
            Provider::Web | Provider::Chat => {
                assert_eq!(
                    header("x-panorama-write-key"),
                    Some(DemoSecrets::WEB_WRITE_KEY)
                );
                assert!(panorama_channels::web::origin_allowed(
                    header("origin"),
                    &settings.web_allowed_origins
                ));
            }
            _ => assert!(header("authorization").is_some(), "{:?}", event.provider),
        }
    }
}

#[test]
fn routes_fall_back_to_events_or_skip_without_secrets() {
    let bare = Credentials::default();
    assert!(matches!(bare.route(Provider::Twilio), Route::Skip(_)));
    assert!(matches!(bare.route(Provider::Survey), Route::Skip(_)));
    let token = Credentials {
        token: Some("pan_x".into()),
        ..Credentials::default()
    };
    assert_eq!(token.route(Provider::Twilio), Route::Events);
    assert_eq!(token.route(Provider::Cti), Route::Webhook);
    assert_eq!(token.route(Provider::Survey), Route::Events);
    let demo = DemoSecrets::credentials(None);
    assert_eq!(token.route(Provider::Agent), Route::Events);
    for provider in Provider::ALL {
        let expected = if matches!(provider, Provider::Survey | Provider::Agent) {
            Route::Skip("needs --token".into())
        } else {
            Route::Webhook
        };
        assert_eq!(demo.route(provider), expected, "{provider:?}");
    }
}

#[test]
fn settled_matters_are_resolved_in_the_case_their_settling_contact_joined() {
    let planned = take(&options(11, 30, all()), 1500);
    let validated = events(&planned, None).expect("valid plan");
    // Each event with the plan's customer it is about, in sending order.
    let mut about = Vec::new();
    for event in &planned {
        let drafts = gateway::drafts(event, event.at, None).expect("drafts");
        for draft in drafts {
            let context = panorama_core::ValidationContext {
                received_at: event.at,
                default_region: None,
            };
            let id = draft.validate(&context).expect("valid").event_id;
            about.push((id, event.customer));
        }
    }
    let mut projection = Projection::default();
    let mut seen = BTreeSet::new();
    // Per customer: the cases their contacts joined since the previous
    // resolution (contacts of one matter can overlap in time, so the
    // settling one is not always the latest).
    let mut joined: std::collections::HashMap<usize, BTreeSet<uuid::Uuid>> = Default::default();
    let mut opened_by_contact = BTreeSet::new();
    let mut resolutions = 0;
    for (id, customer) in about {
        if !seen.insert(id) {
            continue;
        }
        let event = validated
            .iter()
            .find(|event| event.event_id == id)
            .expect("validated once");
        if event.event_type == panorama_core::EventType::CaseResolved {
            resolutions += 1;
            let case = event.case_id.expect("a resolution names its case");
            assert_eq!(event.channel, panorama_core::Channel::Agent);
            assert!(event.agent_id.is_some() && event.outcome.is_some());
            assert!(
                joined.remove(&customer).unwrap_or_default().contains(&case),
                "a case the customer's contacts about this matter joined"
            );
            assert!(projection.is_open(case), "resolved once");
            assert!(
                opened_by_contact.contains(&case),
                "the id the projector derives from the contact that opened it"
            );
        }
        let case = projection.project(event, &IdentityRules::default(), &CaseRules::default());
        if event.event_type.is_customer_contact()
            && let Some(case) = case
        {
            joined.entry(customer).or_default().insert(case);
            opened_by_contact.insert(panorama_core::cases::case_id_for(event));
        }
    }
    assert!(resolutions > 0, "a plan resolves cases");
    let expectation = expect(&planned, None).expect("valid plan");
    assert!(
        expectation.resolved > 0 && expectation.resolved <= expectation.cases,
        "{expectation:?}"
    );
}

fn providers_strategy() -> impl Strategy<Value = BTreeSet<Provider>> {
    proptest::sample::subsequence(Provider::ALL.to_vec(), 1..=Provider::ALL.len())
        .prop_map(|providers| providers.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any seed, population and channels: no panic, every request is what
    /// the provider sends and every event passes the gateway's validation,
    /// never in the future of the plan, and the case count is the same
    /// whether the projector reads events one by one or all at once.
    #[test]
    fn every_plan_is_valid_and_batching_does_not_change_the_counts(
        seed in any::<u64>(),
        customers in 1usize..40,
        providers in providers_strategy(),
        count in 1usize..400,
    ) {
        let planned = take(&options(seed, customers, providers.clone()), count);
        let contacts = [Provider::Twilio, Provider::Cti, Provider::SendGrid, Provider::Mailgun, Provider::Web, Provider::Chat];
        if contacts.iter().any(|p| providers.contains(p)) {
            prop_assert_eq!(planned.len(), count, "a plan goes on while customers can get in touch");
        }
        for event in &planned {
            prop_assert!(providers.contains(&event.provider));
        }
        let validated = events(&planned, None).map_err(TestCaseError::fail)?;
        // Nothing happens after the request that carries it is due.
        if let Some(last) = planned.last() {
            for event in &validated {
                prop_assert!(event.occurred_at <= last.at);
            }
        }
        let rules = IdentityRules::default();
        let cases = CaseRules::default();
        let one = expect_with(&planned, None, &rules, &cases, Grouping::OneByOne)
            .map_err(TestCaseError::fail)?;
        let whole = expect_with(&planned, None, &rules, &cases, Grouping::WholeRun)
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(one, whole);
    }
}
