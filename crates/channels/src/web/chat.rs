//! Live chat: the `chat` object of `chat.*` events and the events a session,
//! its transcript lines and its end become.

use chrono::{DateTime, Utc};
use panorama_core::{Direction, EventDraft};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Kind, checked_id};
use crate::text::SUMMARY_CHARS;
use crate::{
    ChannelError, MAX_REASON, MAX_SHORT_TEXT, Result, bounded, json_object, json_path, json_take,
    rfc3339_time, set_attribute,
};

const CHAT_FIELDS: &[&str] = &[
    "session_id",
    "agent_id",
    "queue",
    "duration_seconds",
    "transcript",
];
const LINE_FIELDS: &[&str] = &["from", "text", "at", "id"];
/// Most transcript lines accepted.
const MAX_TRANSCRIPT_LINES: usize = 500;

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Author {
    Visitor,
    Agent,
    Bot,
}

impl Author {
    fn as_str(self) -> &'static str {
        match self {
            Author::Visitor => "visitor",
            Author::Agent => "agent",
            Author::Bot => "bot",
        }
    }
}

#[derive(Debug)]
struct Line {
    author: Author,
    text: String,
    at: Option<DateTime<Utc>>,
    id: Option<String>,
}

#[derive(Debug)]
pub(super) struct Chat {
    session_id: String,
    agent_id: Option<String>,
    queue: Option<String>,
    duration_seconds: Option<u32>,
    transcript: Vec<Line>,
}

/// The events of a chat object: `base` (what the event object says besides
/// the chat) as the session's start or end, or one event per transcript line
/// of a `chat.message`.
pub(super) fn events(
    kind: Kind,
    event_id: Option<String>,
    chat: &Chat,
    mut base: EventDraft,
    path: &str,
) -> Result<Vec<EventDraft>> {
    base.conversation_id = Some(chat.session_id.clone());
    base.agent_id = chat
        .agent_id
        .as_deref()
        .and_then(|a| bounded(a, MAX_SHORT_TEXT));
    base.queue = chat
        .queue
        .as_deref()
        .and_then(|q| bounded(q, MAX_SHORT_TEXT));
    let first_visitor_line = chat
        .transcript
        .iter()
        .find(|line| line.author == Author::Visitor)
        .map(|line| line.text.as_str());
    // The visitor's opening line says why they came: the contact reason of
    // the session's start and end (single messages do not repeat it).
    if kind != Kind::ChatMessage && base.contact_reason.is_none() {
        base.contact_reason = first_visitor_line.and_then(|t| bounded(t, MAX_REASON));
    }
    match kind {
        Kind::ChatStarted => {
            base.event_id =
                Some(event_id.unwrap_or_else(|| format!("{}:started", chat.session_id)));
            if base.summary.is_none() {
                base.summary = first_visitor_line.and_then(|t| bounded(t, SUMMARY_CHARS));
            }
            Ok(vec![base])
        }
        Kind::ChatEnded => {
            base.event_id = Some(event_id.unwrap_or_else(|| format!("{}:ended", chat.session_id)));
            let digest: Vec<String> = chat
                .transcript
                .iter()
                .map(|line| format!("{}: {}", line.author.as_str(), line.text))
                .collect();
            base.summary = bounded(&digest.join(" | "), SUMMARY_CHARS).or(base.summary);
            base.duration_seconds = chat
                .duration_seconds
                .or_else(|| session_length(&chat.transcript));
            if base.occurred_at.is_none() {
                base.occurred_at = chat
                    .transcript
                    .iter()
                    .filter_map(|l| l.at)
                    .max()
                    .map(crate::rfc3339);
            }
            Ok(vec![base])
        }
        Kind::ChatMessage => {
            if chat.transcript.is_empty() {
                return Err(ChannelError::malformed(
                    json_path(path, "chat.transcript"),
                    "must hold the message(s) of a chat.message event",
                ));
            }
            let single = chat.transcript.len() == 1;
            let drafts = chat
                .transcript
                .iter()
                .enumerate()
                .map(|(index, line)| {
                    let event_id = match (&line.id, &event_id) {
                        (Some(id), _) => format!("{}:{id}", chat.session_id),
                        (None, Some(key)) if single => key.clone(),
                        (None, Some(key)) => format!("{key}:{index}"),
                        (None, None) => line_key(&chat.session_id, index, line),
                    };
                    let direction = match line.author {
                        Author::Visitor => Direction::Inbound,
                        Author::Agent | Author::Bot => Direction::Outbound,
                    };
                    let mut draft = EventDraft {
                        event_id: Some(event_id),
                        occurred_at: line
                            .at
                            .map(crate::rfc3339)
                            .or_else(|| base.occurred_at.clone()),
                        direction: Some(direction.as_str().to_owned()),
                        summary: bounded(&line.text, SUMMARY_CHARS),
                        ..base.clone()
                    };
                    set_attribute(&mut draft, "chat.from", line.author.as_str());
                    draft
                })
                .collect();
            Ok(drafts)
        }
        Kind::FormSubmitted | Kind::PageViewed => Ok(vec![base]),
    }
}

/// A stable id for a transcript line without its own id: the session, the
/// line's time (or position), its author and a hash of its text, so a resent
/// line is the same event.
fn line_key(session_id: &str, index: usize, line: &Line) -> String {
    let digest = Sha256::digest(line.text.as_bytes());
    let hash = hex::encode(&digest[..8]);
    let when = match line.at {
        Some(at) => crate::rfc3339(at),
        None => index.to_string(),
    };
    format!("{session_id}:{when}:{}:{hash}", line.author.as_str())
}

/// From the first to the last timed line.
fn session_length(transcript: &[Line]) -> Option<u32> {
    let first = transcript.iter().filter_map(|l| l.at).min()?;
    let last = transcript.iter().filter_map(|l| l.at).max()?;
    u32::try_from((last - first).num_seconds()).ok()
}

pub(super) fn parse_chat(value: Value, path: &str) -> Result<Chat> {
    let mut chat = json_object(value, path, CHAT_FIELDS)?;
    let session_id = json_take::<String>(&mut chat, "session_id", path)?
        .ok_or_else(|| ChannelError::malformed(json_path(path, "session_id"), "is required"))?;
    let session_id = checked_id(&session_id, &json_path(path, "session_id"))?;
    let agent_id = json_take::<String>(&mut chat, "agent_id", path)?;
    let queue = json_take::<String>(&mut chat, "queue", path)?;
    let duration_seconds = json_take::<u32>(&mut chat, "duration_seconds", path)?;
    let transcript_path = json_path(path, "transcript");
    let lines = json_take::<Vec<Value>>(&mut chat, "transcript", path)?.unwrap_or_default();
    if lines.len() > MAX_TRANSCRIPT_LINES {
        return Err(ChannelError::malformed(
            transcript_path,
            format!("at most {MAX_TRANSCRIPT_LINES} lines"),
        ));
    }
    let transcript = lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| parse_line(line, &format!("{transcript_path}[{index}]")))
        .collect::<Result<Vec<Line>>>()?;
    Ok(Chat {
        session_id,
        agent_id,
        queue,
        duration_seconds,
        transcript,
    })
}

fn parse_line(value: Value, path: &str) -> Result<Line> {
    let mut line = json_object(value, path, LINE_FIELDS)?;
    let mut text = |name: &str| json_take::<String>(&mut line, name, path);
    let author = match text("from")?.as_deref().map(str::trim) {
        Some("visitor") => Author::Visitor,
        Some("agent") => Author::Agent,
        Some("bot") => Author::Bot,
        _ => {
            return Err(ChannelError::malformed(
                json_path(path, "from"),
                "must be visitor, agent or bot",
            ));
        }
    };
    let body = text("text")?.unwrap_or_default();
    let at = text("at")?
        .map(|raw| rfc3339_time(&raw, &json_path(path, "at")))
        .transpose()?;
    let id = text("id")?
        .map(|id| checked_id(&id, &json_path(path, "id")))
        .transpose()?;
    Ok(Line {
        author,
        text: body,
        at,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_keys_are_stable_and_tell_lines_apart() {
        let line = |text: &str, at: Option<&str>| Line {
            author: Author::Visitor,
            text: text.to_owned(),
            at: at.map(|a| a.parse().expect("time")),
            id: None,
        };
        let a = line_key("s1", 0, &line("hi", Some("2026-11-24T10:00:00Z")));
        assert_eq!(
            a,
            line_key("s1", 3, &line("hi", Some("2026-11-24T10:00:00Z")))
        );
        assert!(a.starts_with("s1:2026-11-24T10:00:00Z:visitor:"), "{a}");
        assert_ne!(
            a,
            line_key("s1", 0, &line("hello", Some("2026-11-24T10:00:00Z")))
        );
        assert_ne!(
            a,
            line_key("s2", 0, &line("hi", Some("2026-11-24T10:00:00Z")))
        );
        assert_ne!(
            line_key("s1", 0, &line("hi", None)),
            line_key("s1", 1, &line("hi", None))
        );
    }
}
