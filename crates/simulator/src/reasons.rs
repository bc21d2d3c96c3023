//! Why simulated customers get in touch, in their own words, with what an
//! email about it would say, which queue a call about it goes to and how
//! the agent who settles it records the outcome.

/// One reason for contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reason {
    /// As the customer says it; the contact reason of calls, forms, chats.
    pub(crate) said: &'static str,
    /// Subject line of an email about it.
    pub(crate) subject: &'static str,
    /// The rest of what they write.
    pub(crate) detail: &'static str,
    /// The call queue it is routed to.
    pub(crate) queue: &'static str,
    /// How the agent sums it up on resolving the case.
    pub(crate) outcome: &'static str,
}

pub(crate) const REASONS: &[Reason] = &[
    Reason {
        said: "My order did not arrive",
        subject: "Where is my order?",
        detail: "The tracking page has said 'out for delivery' for three days now.",
        queue: "orders",
        outcome: "Replacement sent",
    },
    Reason {
        said: "I want to change my contract",
        subject: "Changing my contract",
        detail: "I would like a cheaper plan, my current one has more than I need.",
        queue: "sales",
        outcome: "Contract changed",
    },
    Reason {
        said: "The device stopped working",
        subject: "Device broken",
        detail: "It does not switch on any more, even after charging it overnight.",
        queue: "technical",
        outcome: "Device replaced",
    },
    Reason {
        said: "I have a question about my bill",
        subject: "Question about my invoice",
        detail: "There is an amount on this month's invoice that I do not recognise.",
        queue: "billing",
        outcome: "Explained the bill",
    },
    Reason {
        said: "I am moving house",
        subject: "New address from next month",
        detail: "We move on the first; can the service move with us?",
        queue: "service",
        outcome: "Address changed",
    },
    Reason {
        said: "I was charged twice",
        subject: "Double payment",
        detail: "My bank statement shows the same payment twice.",
        queue: "billing",
        outcome: "Double payment refunded",
    },
    Reason {
        said: "I want to cancel my subscription",
        subject: "Cancellation",
        detail: "Please cancel my subscription at the end of this month.",
        queue: "retention",
        outcome: "Subscription cancelled",
    },
    Reason {
        said: "My internet keeps dropping",
        subject: "Connection problems",
        detail: "The connection drops several times every evening.",
        queue: "technical",
        outcome: "Line fault fixed",
    },
    Reason {
        said: "How do I return a product?",
        subject: "Return",
        detail: "The size is wrong and I would like to send it back.",
        queue: "orders",
        outcome: "Return label sent",
    },
    Reason {
        said: "I want to change my payment details",
        subject: "New bank account",
        detail: "I have a new bank account; please collect from that one from now on.",
        queue: "billing",
        outcome: "Payment details changed",
    },
];

/// What the contact centre answers, by how far the case got.
pub(crate) const REPLIES: &[&str] = &[
    "Thank you for your message, we are looking into it.",
    "I have passed this on to a colleague who will get back to you.",
    "This is sorted now; is there anything else we can do?",
];
