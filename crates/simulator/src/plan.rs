//! The plan: what the simulated population does, as a stream of provider
//! requests in the order of their time. A pure function of its options: the
//! same seed, population, providers, start, history and rate give the same
//! requests with the same provider ids, hence the same event ids.
//!
//! Time has two parts. The history runs from `start` for `history`, on a
//! realistic clock: contacts about one matter hours apart, customers coming
//! back after days. After it comes the live part, on a clock compressed so
//! that events arrive at about `rate` per second and a follow-up comes
//! seconds to minutes later, so a watcher sees histories grow.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use panorama_core::ValidationContext;
use panorama_core::cases::CaseRules;
use panorama_core::identity::IdentityRules;
use uuid::Uuid;

use crate::dice::Dice;
use crate::gateway::drafts;
use crate::planned::{Payload, PlannedEvent, Provider};
use crate::population::{Customer, Persona, population};
use crate::projection::Projection;
use crate::reasons::{REASONS, Reason};
use crate::touches::{self, Contact, Step};

/// What a plan is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    /// The seed of every draw.
    pub seed: u64,
    /// Population size (at least 1).
    pub customers: usize,
    /// The providers customers use.
    pub providers: BTreeSet<Provider>,
    /// When the history starts.
    pub start: DateTime<Utc>,
    /// How long the history lasts; the live part follows it.
    pub history: Duration,
    /// Events per second in the live part (it spaces live events).
    pub rate: f64,
}

/// How many episodes (matters a customer gets in touch about) each
/// customer has in the history, on average.
const EPISODES_PER_CUSTOMER: f64 = 2.5;
/// Requests an episode makes on average, to pace live episodes.
const REQUESTS_PER_EPISODE: f64 = 7.0;
/// Most contacts about one matter before the customer gives up.
const MAX_CONTACTS: usize = 4;
/// A customer does not raise the same reason again within this many days,
/// so a matter's contacts are one case whatever the projector's batches.
const REASON_QUIET_DAYS: i64 = 15;

/// The stream of planned requests; see the module documentation.
#[derive(Debug, Clone)]
pub struct Plan {
    options: PlanOptions,
    dice: Dice,
    customers: Vec<Customer>,
    /// Requests decided but not yet handed out, by (time, order).
    pending: BTreeMap<(DateTime<Utc>, u64), PlannedEvent>,
    order: u64,
    seq: u64,
    next_episode: DateTime<Utc>,
    /// Per customer: when their current matter is over, which reasons they
    /// raised when, whether their second number is known yet, and whether
    /// they have visited their account page.
    busy_until: Vec<DateTime<Utc>>,
    reasons: Vec<Vec<(usize, DateTime<Utc>)>>,
    second_phone_linked: Vec<bool>,
    signed_in: Vec<bool>,
    /// The projection as the requests handed out so far leave it, to name
    /// the case a resolution is about, and the event ids it has seen.
    projection: Projection,
    seen: HashSet<Uuid>,
    /// Requests of a settling contact (by order) to the resolution that
    /// follows them, and a resolution to the case its contact joined.
    settling: HashMap<u64, u64>,
    settled: HashMap<u64, Uuid>,
}

impl Plan {
    /// A plan from its options.
    pub fn new(options: PlanOptions) -> Plan {
        let mut options = options;
        options.customers = options.customers.max(1);
        if !(options.rate.is_finite() && options.rate > 0.0) {
            options.rate = 1.0;
        }
        options.history = options.history.max(Duration::zero());
        let mut dice = Dice::new(options.seed);
        let customers = population(&mut dice, options.customers);
        let count = customers.len();
        Plan {
            next_episode: options.start,
            options,
            dice,
            customers,
            pending: BTreeMap::new(),
            order: 0,
            seq: 0,
            busy_until: vec![DateTime::<Utc>::MIN_UTC; count],
            reasons: vec![Vec::new(); count],
            second_phone_linked: vec![false; count],
            signed_in: vec![false; count],
            projection: Projection::default(),
            seen: HashSet::new(),
            settling: HashMap::new(),
            settled: HashMap::new(),
        }
    }

    /// The population.
    pub fn customers(&self) -> &[Customer] {
        &self.customers
    }

    /// The options, with out-of-range values corrected.
    pub fn options(&self) -> &PlanOptions {
        &self.options
    }

    /// When the live part starts.
    pub fn history_end(&self) -> DateTime<Utc> {
        self.options.start + self.options.history
    }

    fn is_live(&self, at: DateTime<Utc>) -> bool {
        at >= self.history_end()
    }

    /// The length of one "hour" of a matter's clock at `at`.
    fn hour(&self, at: DateTime<Utc>) -> Duration {
        if self.is_live(at) {
            seconds(5.0 / self.options.rate).clamp(Duration::seconds(1), Duration::hours(1))
        } else {
            Duration::hours(1)
        }
    }

    fn episode_gap(&mut self, at: DateTime<Utc>) -> Duration {
        let mean = if self.is_live(at) {
            REQUESTS_PER_EPISODE / self.options.rate
        } else {
            self.options.history.num_seconds() as f64
                / (self.customers.len() as f64 * EPISODES_PER_CUSTOMER)
        };
        seconds(self.dice.exponential(mean.max(0.001)))
    }

    /// Adds a request; its order.
    fn push(&mut self, at: DateTime<Utc>, customer: usize, step: Step) -> u64 {
        let (after, provider, payload) = step;
        let at = at + after;
        self.order += 1;
        let live = self.is_live(at);
        self.pending.insert(
            (at, self.order),
            PlannedEvent {
                seq: 0,
                at,
                live,
                customer,
                provider,
                payload,
            },
        );
        self.order
    }

    /// Starts a matter for a free customer at `at`, deciding every contact
    /// it takes.
    fn episode(&mut self, at: DateTime<Utc>) {
        let free: Vec<usize> = (0..self.customers.len())
            .filter(|&c| self.busy_until[c] <= at)
            .collect();
        if free.is_empty() {
            return;
        }
        let index = *self.dice.pick(&free);
        let quiet = at - self.hour(at) * (24 * REASON_QUIET_DAYS) as i32;
        self.reasons[index].retain(|(_, when)| *when >= quiet);
        let open: Vec<usize> = (0..REASONS.len())
            .filter(|r| !self.reasons[index].iter().any(|(used, _)| used == r))
            .collect();
        if open.is_empty() {
            return;
        }
        let reason_index = *self.dice.pick(&open);
        let customer = self.customers[index].clone();
        let reason = &REASONS[reason_index];
        let hour = self.hour(at);
        let mut when = at;
        let mut steps: Vec<(DateTime<Utc>, Step)> = Vec::new();
        // A customer's first visit to their account page tells who they
        // are (email, phone, account) before they first get in touch, as a
        // shop's own customers are known; what they say later attaches to
        // that one profile, whichever channel it comes through.
        if !self.signed_in[index] && self.has(Provider::Web) {
            steps.extend(
                touches::signed_in_visit(&mut self.dice, &customer, when)
                    .into_iter()
                    .map(|s| (when, s)),
            );
            self.signed_in[index] = true;
            when += Duration::minutes(5);
        }

        // Once, someone shows up under a second number before a later
        // contact about the same matter links it to them.
        let second = customer.second_phone.clone().filter(|_| {
            !self.second_phone_linked[index] && self.can_link(&customer) && self.dice.chance(0.5)
        });
        if let Some(second) = &second {
            let contact = self.contact(&customer, reason, when, false, 0);
            steps.extend(
                self.unlinked(&contact, second)
                    .into_iter()
                    .map(|s| (when, s)),
            );
            when += hour * self.dice.between(2, 20) as i32;
            let contact = self.contact(&customer, reason, when, false, 1);
            steps.extend(self.link(&contact, second).into_iter().map(|s| (when, s)));
            self.second_phone_linked[index] = true;
            when += hour * self.dice.between(1, 12) as i32;
        }

        let mut previous = None;
        let mut thread: Option<String> = None;
        let earlier = if second.is_some() { 2 } else { 0 };
        let mut last = None;
        // The steps of the contact that settles the matter.
        let mut settling = None;
        for number in earlier..MAX_CONTACTS {
            let resolves = number + 1 == MAX_CONTACTS || self.dice.chance(0.55);
            let Some(touch) = self.choose_touch(&customer, previous) else {
                break;
            };
            let contact = self.contact(&customer, reason, when, resolves, number);
            let (touch_steps, identifier) = self.touch(&contact, touch, &mut thread);
            let first = steps.len();
            steps.extend(touch_steps.into_iter().map(|s| (when, s)));
            last = Some((contact.at, identifier, resolves, number + 1));
            previous = Some(touch);
            if resolves {
                settling = Some(first..steps.len());
                break;
            }
            when += hour * self.dice.between(3, 20) as i32;
        }
        // The agent who settled it resolves the case a little later.
        let mut resolution = None;
        if let Some(range) = settling.clone()
            && let Some((_, (kind, value), _, contacts)) = &last
            && self.has(Provider::Agent)
        {
            let done = steps[range.clone()]
                .iter()
                .map(|(at, (after, _, _))| *at + *after)
                .max()
                .unwrap_or(when);
            let resolved_at =
                done + (hour * self.dice.between(5, 30) as i32 / 60).max(Duration::seconds(1));
            let touch_steps: Vec<Step> = steps[range].iter().map(|(_, s)| s.clone()).collect();
            let agent = touches::agent_of(&touch_steps)
                .unwrap_or_else(|| format!("agent-{:02}", self.dice.between(1, 24)));
            let contact = self.contact(&customer, reason, resolved_at, true, contacts - 1);
            let resolve = touches::resolution(&mut self.dice, &contact, (kind, value), &agent);
            resolution = Some(steps.len());
            steps.extend(resolve.into_iter().map(|s| (resolved_at, s)));
        }
        if let Some((at, identifier, resolves, contacts)) = last
            && self.options.providers.contains(&Provider::Survey)
            && self.dice.chance(0.5)
        {
            let answered_at = at + hour * self.dice.between(1, 4) as i32;
            let contact = self.contact(&customer, reason, answered_at, resolves, contacts - 1);
            let (kind, value) = identifier;
            let survey = touches::survey(&mut self.dice, &contact, (kind, &value), contacts);
            steps.extend(survey.into_iter().map(|s| (answered_at, s)));
        }
        if steps.is_empty() {
            return;
        }
        let end = steps
            .iter()
            .map(|(at, (after, _, _))| *at + *after)
            .max()
            .unwrap_or(at);
        self.busy_until[index] = end;
        self.reasons[index].push((reason_index, at));
        let orders: Vec<u64> = steps
            .into_iter()
            .map(|(at, step)| self.push(at, index, step))
            .collect();
        if let (Some(range), Some(resolution)) = (settling, resolution) {
            for &order in &orders[range] {
                self.settling.insert(order, orders[resolution]);
            }
        }
    }

    fn contact<'a>(
        &self,
        customer: &'a Customer,
        reason: &'a Reason,
        at: DateTime<Utc>,
        resolves: bool,
        earlier: usize,
    ) -> Contact<'a> {
        Contact {
            customer,
            reason,
            at,
            resolves,
            earlier,
            live: self.is_live(at),
        }
    }

    fn has(&self, provider: Provider) -> bool {
        self.options.providers.contains(&provider)
    }

    /// Whether a second number can show up and be linked with the providers
    /// at hand: it first comes in through a call (or a form with nothing
    /// else), then a form with the email address and that number, or a call
    /// from it that the IVR matches to the account, links it.
    fn can_link(&self, customer: &Customer) -> bool {
        (self.has(Provider::Cti) || self.has(Provider::Web))
            && (self.has(Provider::Web) || customer.account.is_some())
    }

    /// The first contact under the second number: only that number (and the
    /// reason) is known.
    fn unlinked(&mut self, contact: &Contact<'_>, second: &str) -> Vec<Step> {
        if self.has(Provider::Cti) {
            touches::cti_call(&mut self.dice, contact, second, None)
        } else {
            let fields = serde_json::json!({"phone": second, "message": contact.reason.said});
            touches::bare_form(&mut self.dice, contact, fields)
        }
    }

    /// The contact that tells who the second number belongs to.
    fn link(&mut self, contact: &Contact<'_>, second: &str) -> Vec<Step> {
        if self.has(Provider::Web) {
            let fields = serde_json::json!({
                "name": contact.customer.name,
                "email": contact.customer.email,
                "phone": second,
                "message": contact.reason.said,
            });
            touches::bare_form(&mut self.dice, contact, fields)
        } else {
            touches::cti_call(
                &mut self.dice,
                contact,
                second,
                contact.customer.account.as_deref(),
            )
        }
    }

    fn choose_touch(&mut self, customer: &Customer, previous: Option<Touch>) -> Option<Touch> {
        let weights: Vec<f64> = Touch::ALL
            .iter()
            .map(|&touch| {
                let available = match touch {
                    Touch::Call => self.has(Provider::Twilio) || self.has(Provider::Cti),
                    Touch::Email => self.has(Provider::SendGrid) || self.has(Provider::Mailgun),
                    Touch::Whatsapp => self.has(Provider::Whatsapp) && customer.whatsapp.is_some(),
                    Touch::Instagram => {
                        self.has(Provider::Instagram) && customer.instagram.is_some()
                    }
                    Touch::WebForm => self.has(Provider::Web),
                    Touch::Chat => self.has(Provider::Chat),
                };
                let hop = if previous == Some(touch) { 0.4 } else { 1.0 };
                if available {
                    touch.weight(customer.persona) * hop
                } else {
                    0.0
                }
            })
            .collect();
        self.dice.weighted(&weights).map(|i| Touch::ALL[i])
    }

    /// The requests of one contact, and the identifier a survey about it
    /// would reach the customer by.
    fn touch(
        &mut self,
        contact: &Contact<'_>,
        touch: Touch,
        thread: &mut Option<String>,
    ) -> (Vec<Step>, (&'static str, String)) {
        let customer = contact.customer;
        let dice = &mut self.dice;
        match touch {
            Touch::Call => {
                let cti = self.options.providers.contains(&Provider::Cti)
                    && (!self.options.providers.contains(&Provider::Twilio)
                        || customer.account.is_some() && dice.chance(0.7)
                        || dice.chance(0.3));
                let steps = if cti {
                    touches::cti_call(dice, contact, &customer.phone, customer.account.as_deref())
                } else {
                    touches::twilio_call(dice, contact, &customer.phone)
                };
                (steps, ("phone", customer.phone.clone()))
            }
            Touch::Email => {
                let both = self.options.providers.contains(&Provider::SendGrid)
                    && self.options.providers.contains(&Provider::Mailgun);
                let provider = if both {
                    *dice.pick(&[Provider::SendGrid, Provider::Mailgun])
                } else if self.options.providers.contains(&Provider::SendGrid) {
                    Provider::SendGrid
                } else {
                    Provider::Mailgun
                };
                let (steps, id) = touches::email(dice, contact, provider, thread.as_deref());
                thread.get_or_insert(id);
                (steps, ("email", customer.email.clone()))
            }
            Touch::Whatsapp => {
                let wa = customer.whatsapp.clone().unwrap_or_default();
                (touches::whatsapp(dice, contact, &wa), ("whatsapp", wa))
            }
            Touch::Instagram => {
                let ig = customer.instagram.clone().unwrap_or_default();
                (touches::instagram(dice, contact, &ig), ("instagram", ig))
            }
            Touch::WebForm => {
                let phone = dice.chance(0.5).then_some(customer.phone.as_str());
                (
                    touches::web_visit(dice, contact, phone),
                    ("email", customer.email.clone()),
                )
            }
            Touch::Chat => (
                touches::chat(dice, contact),
                ("email", customer.email.clone()),
            ),
        }
    }
}

impl Iterator for Plan {
    type Item = PlannedEvent;

    fn next(&mut self) -> Option<PlannedEvent> {
        loop {
            let (order, mut event) = self.next_pending()?;
            if event.provider == Provider::Agent {
                // The case the settling contact joined; none (its requests
                // made no event) or resolved already: nothing to resolve.
                let case = self
                    .settled
                    .remove(&order)
                    .filter(|&case| self.projection.is_open(case));
                let (Some(case), Payload::Json(body)) = (case, &mut event.payload) else {
                    continue;
                };
                body["case_id"] = serde_json::json!(case);
            }
            let case = self.project(&event);
            if let Some(resolution) = self.settling.remove(&order)
                && let Some(case) = case
            {
                self.settled.insert(resolution, case);
            }
            if event.provider == Provider::Agent {
                let window = CaseRules::default().window;
                self.projection.forget_resolved_before(event.at - window);
            }
            event.seq = self.seq;
            self.seq += 1;
            return Some(event);
        }
    }
}

impl Plan {
    /// The earliest pending request and its order, starting matters until
    /// no later start could come before it.
    fn next_pending(&mut self) -> Option<(u64, PlannedEvent)> {
        // Matters start until the earliest pending request comes before the
        // next start. A plan ends only when its channels let nobody get in
        // touch (e.g. only surveys): then no start ever adds a request.
        let mut fruitless = 0;
        loop {
            let earliest = self.pending.first_key_value().map(|((at, _), _)| *at);
            if earliest.is_some_and(|at| at < self.next_episode) {
                break;
            }
            let at = self.next_episode;
            let before = self.order;
            self.episode(at);
            self.next_episode = at + self.episode_gap(at);
            // The live part starts right where the history ends, not a
            // history-sized gap later.
            let live_from = self.history_end();
            if at < live_from && self.next_episode > live_from {
                self.next_episode = live_from;
            }
            fruitless = if self.order == before {
                fruitless + 1
            } else {
                0
            };
            if fruitless > 10_000 && earliest.is_none() {
                return None;
            }
        }
        let ((_, order), event) = self.pending.pop_first()?;
        Some((order, event))
    }

    /// Projects the events of a request handed out, as the projector will
    /// once it is sent: the case its last event with a case is in.
    fn project(&mut self, event: &PlannedEvent) -> Option<Uuid> {
        let context = ValidationContext {
            received_at: event.at,
            default_region: None,
        };
        let mut case = None;
        for draft in drafts(event, event.at, None).unwrap_or_default() {
            let Ok(validated) = draft.validate(&context) else {
                continue;
            };
            if self.seen.insert(validated.event_id) {
                case = self
                    .projection
                    .project(&validated, &IdentityRules::default(), &CaseRules::default())
                    .or(case);
            }
        }
        case
    }
}

/// The kinds of contact a customer can choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    Call,
    Email,
    Whatsapp,
    Instagram,
    WebForm,
    Chat,
}

impl Touch {
    const ALL: [Touch; 6] = [
        Touch::Call,
        Touch::Email,
        Touch::Whatsapp,
        Touch::Instagram,
        Touch::WebForm,
        Touch::Chat,
    ];

    /// How much a persona likes this way of getting in touch.
    fn weight(self, persona: Persona) -> f64 {
        use Persona::*;
        use Touch::*;
        match (persona, self) {
            (SelfDirected, Call) => 1.0,
            (SelfDirected, Email) => 2.0,
            (SelfDirected, Whatsapp) => 1.5,
            (SelfDirected, WebForm) => 5.0,
            (SelfDirected, Chat) => 3.0,
            (AdviceSeeking, Call) => 5.0,
            (AdviceSeeking, Email) => 4.0,
            (AdviceSeeking, WebForm | Chat | Whatsapp) => 0.7,
            (Elderly, Call) => 6.0,
            (Elderly, Email) => 1.0,
            (Elderly, WebForm) => 2.0,
            (Elderly, Chat) => 1.5,
            (SocialFirst, Whatsapp) => 6.0,
            (SocialFirst, Instagram) => 2.0,
            (SocialFirst, Chat) => 2.0,
            (SocialFirst, Call | Email | WebForm) => 0.7,
            (Business, Call | Email) => 4.0,
            (Business, WebForm) => 2.0,
            (Business, Whatsapp) => 1.0,
            _ => 0.0,
        }
    }
}

fn seconds(value: f64) -> Duration {
    Duration::milliseconds((value * 1000.0).min(1e15) as i64)
}
