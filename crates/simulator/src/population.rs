//! The simulated customers: who they are, how to reach them, and how they
//! like to get in touch (their persona).

use crate::dice::Dice;

/// How a customer gets in touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Persona {
    /// Looks things up and fills in forms or chats; rarely calls.
    SelfDirected,
    /// Wants a person: calls and emails.
    AdviceSeeking,
    /// Calls; a grandchild uses the web (forms, chat) on their behalf.
    Elderly,
    /// WhatsApp first, Instagram too; hardly ever calls.
    SocialFirst,
    /// A business with an account number: calls the account line, emails
    /// from the company domain.
    Business,
}

impl Persona {
    /// Every persona, in the order the population cycles through them.
    pub const ALL: [Persona; 5] = [
        Persona::SelfDirected,
        Persona::AdviceSeeking,
        Persona::Elderly,
        Persona::SocialFirst,
        Persona::Business,
    ];

    /// The name used in progress lines and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Persona::SelfDirected => "self-directed",
            Persona::AdviceSeeking => "advice-seeking",
            Persona::Elderly => "elderly",
            Persona::SocialFirst => "social-first",
            Persona::Business => "business",
        }
    }
}

/// One simulated customer and every identifier they may show up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Position in the population.
    pub index: usize,
    /// How they get in touch.
    pub persona: Persona,
    /// Full name, as they give it.
    pub name: String,
    /// Their mobile number, E.164.
    pub phone: String,
    /// Their email address (the company's for a business).
    pub email: String,
    /// Customer number; every business and some private customers have one.
    pub account: Option<String>,
    /// WhatsApp id (the phone number's digits), for those who use WhatsApp.
    pub whatsapp: Option<String>,
    /// Instagram-scoped user id, for those who message on Instagram.
    pub instagram: Option<String>,
    /// The web visitor cookie of the browser they (or their grandchild) use.
    pub visitor: String,
    /// A second number (work phone) under which they show up once before a
    /// later contact links it to them.
    pub second_phone: Option<String>,
    /// Who uses the web for them (an elderly customer's grandchild).
    pub helper: Option<String>,
}

const FIRST_NAMES: &[&str] = &[
    "Anna", "Daan", "Sanne", "Lucas", "Emma", "Sem", "Julia", "Noah", "Lotte", "Finn", "Fleur",
    "Milan", "Eva", "Thijs", "Anouk", "Bram", "Lieke", "Jesse", "Chloé", "Arthur", "Louise",
    "Wout", "Elise", "Jonas", "Marie", "Lukas", "Sophie", "Jürgen", "Hannah", "Felix", "Greet",
    "Wim", "Ria", "Henk", "Mieke", "Karel", "Truus", "Jozef",
];

const LAST_NAMES: &[&str] = &[
    "de Vries",
    "Jansen",
    "van den Berg",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Peeters",
    "Janssens",
    "Maes",
    "Claes",
    "Willems",
    "Goossens",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Becker",
    "Hoffmann",
    "van Dijk",
    "Dekker",
    "Vermeulen",
];

const MAIL_DOMAINS: &[&str] = &[
    "ziggo.nl",
    "kpnmail.nl",
    "gmail.com",
    "outlook.com",
    "telenet.be",
    "skynet.be",
    "web.de",
    "gmx.de",
    "hotmail.com",
    "proton.me",
];

const COMPANIES: &[(&str, &str)] = &[
    ("Bakkerij Jansen", "bakkerij-jansen.nl"),
    ("Fietsen Peeters", "fietsenpeeters.be"),
    ("Autohaus Weber", "autohaus-weber.de"),
    ("Kapsalon Lotte", "kapsalonlotte.nl"),
    ("Drukkerij De Boer", "drukkerijdeboer.nl"),
    ("Brouwerij Maes", "brouwerijmaes.be"),
    ("Schreinerei Fischer", "schreinerei-fischer.de"),
    ("Installatiebedrijf Smit", "smit-installatie.nl"),
];

/// Builds `count` customers from `dice`, cycling through the personas so a
/// small population has each of them.
pub(crate) fn population(dice: &mut Dice, count: usize) -> Vec<Customer> {
    // Numbers and ids count up from a seeded base: unique within a run, and
    // unlikely to meet another seed's.
    let base = dice.below(10_000_000);
    (0..count)
        .map(|index| customer(dice, index, base + index as u64))
        .collect()
}

fn customer(dice: &mut Dice, index: usize, serial: u64) -> Customer {
    let persona = Persona::ALL[index % Persona::ALL.len()];
    let first = *dice.pick(FIRST_NAMES);
    let last = *dice.pick(LAST_NAMES);
    let name = format!("{first} {last}");
    let phone = phone_number(dice.below(3), serial, false);
    let company = (persona == Persona::Business).then(|| *dice.pick(COMPANIES));
    let email = match company {
        Some((_, domain)) => format!(
            "{}.{}{}@{domain}",
            ascii(first),
            ascii(last),
            serial % 100_000
        ),
        None => format!(
            "{}.{}{}@{}",
            ascii(first),
            ascii(last),
            serial % 100_000,
            dice.pick(MAIL_DOMAINS)
        ),
    };
    let account = match persona {
        Persona::Business => Some(format!("B-{:07}", serial % 10_000_000)),
        Persona::SocialFirst => None,
        _ => dice
            .chance(0.6)
            .then(|| format!("C-{:07}", serial % 10_000_000)),
    };
    let whatsapp = match persona {
        Persona::SocialFirst => true,
        Persona::SelfDirected | Persona::Business => dice.chance(0.3),
        Persona::AdviceSeeking | Persona::Elderly => dice.chance(0.1),
    }
    .then(|| phone.trim_start_matches('+').to_owned());
    let instagram =
        (persona == Persona::SocialFirst).then(|| format!("17841{:011}", serial % 100_000_000_000));
    let second_phone = match persona {
        Persona::AdviceSeeking | Persona::Business | Persona::SelfDirected => dice.chance(0.5),
        Persona::Elderly | Persona::SocialFirst => false,
    }
    .then(|| phone_number(dice.below(3), serial, true));
    let helper = (persona == Persona::Elderly).then(|| {
        format!(
            "{} {last}",
            dice.pick(&["Mila", "Levi", "Zoë", "Luuk", "Nora"])
        )
    });
    let name = match company {
        Some((company, _)) => format!("{name} ({company})"),
        None => name,
    };
    Customer {
        index,
        persona,
        name,
        phone,
        email,
        account,
        whatsapp,
        instagram,
        visitor: format!("v-{}", dice.hex(6)),
        second_phone,
        helper,
    }
}

/// A valid mobile number: Dutch (+31 6), Belgian (+32 47x, 49x) or German
/// (+49 151, 152), numbered by `serial`; a `second` number comes from
/// another range, so it never equals anybody's first.
fn phone_number(country: u64, serial: u64, second: bool) -> String {
    let serial = serial % 10_000_000;
    match (country, second) {
        (0, false) => format!("+3161{serial:07}"),
        (0, true) => format!("+3162{serial:07}"),
        (1, false) => format!("+3247{serial:07}"),
        (1, true) => format!("+3249{serial:07}"),
        (_, false) => format!("+49151{serial:08}"),
        (_, true) => format!("+49152{serial:08}"),
    }
}

/// A name part as it goes into an email address: ASCII letters only.
fn ascii(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'é' | 'è' | 'ë' => Some('e'),
            'ü' => Some('u'),
            'ö' => Some('o'),
            'ä' => Some('a'),
            c if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use panorama_core::{Identifier, IdentifierKind};

    #[test]
    fn every_identifier_parses_and_none_is_shared() {
        let customers = population(&mut Dice::new(3), 200);
        let mut seen = std::collections::HashSet::new();
        for customer in &customers {
            let mut identifiers = vec![
                (IdentifierKind::Phone, customer.phone.clone()),
                (IdentifierKind::Email, customer.email.clone()),
                (IdentifierKind::Visitor, customer.visitor.clone()),
            ];
            identifiers.extend(
                customer
                    .account
                    .clone()
                    .map(|a| (IdentifierKind::Account, a)),
            );
            identifiers.extend(
                customer
                    .whatsapp
                    .clone()
                    .map(|w| (IdentifierKind::Whatsapp, w)),
            );
            identifiers.extend(
                customer
                    .instagram
                    .clone()
                    .map(|i| (IdentifierKind::Instagram, i)),
            );
            identifiers.extend(
                customer
                    .second_phone
                    .clone()
                    .map(|p| (IdentifierKind::Phone, p)),
            );
            for (kind, value) in identifiers {
                let parsed = Identifier::parse(kind, &value, None)
                    .unwrap_or_else(|e| panic!("{kind:?} {value}: {e}"));
                assert!(seen.insert(parsed), "{value} is shared");
            }
        }
        let personas: std::collections::HashSet<Persona> =
            customers.iter().map(|c| c.persona).collect();
        assert_eq!(personas.len(), Persona::ALL.len());
    }
}
