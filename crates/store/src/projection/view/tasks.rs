//! Follow-up tasks, projected from `task.*` events: created with an id, a
//! title, a due time, the channel to use and maybe an assignee; completed
//! or rescheduled later. Events whose task attributes do not parse stay in
//! the history and change no task.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::{ContactEvent, EventType};
use uuid::Uuid;

use crate::Result;
use crate::projection::outbox::{ChangeDetail, TaskTransition};

// The names are part of the event contract, which bounds their values.
pub use panorama_core::attributes::{TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID};

fn attribute<'a>(event: &'a ContactEvent, key: &str) -> Option<&'a str> {
    event.attributes.get(key).map(String::as_str)
}

fn task_id(event: &ContactEvent) -> Option<Uuid> {
    attribute(event, TASK_ID).and_then(|id| Uuid::parse_str(id).ok())
}

fn due_at(event: &ContactEvent) -> Option<DateTime<Utc>> {
    attribute(event, TASK_DUE_AT)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc))
}

/// A task's fields after a change, as the change feed reports them.
fn task_detail(
    task_id: Uuid,
    status: &str,
    due_at: Option<DateTime<Utc>>,
    channel: Option<String>,
    assignee: Option<String>,
) -> ChangeDetail {
    ChangeDetail::Task {
        task_id,
        status: status.to_owned(),
        due_at,
        channel,
        assignee,
    }
}

/// Applies the task events among `inserted` (event, profile); returns the
/// tasks they created or changed, for the change feed.
pub(crate) async fn project_tasks(
    transaction: &Transaction<'_>,
    inserted: &[(&ContactEvent, Uuid)],
) -> Result<Vec<TaskTransition>> {
    let mut transitions = Vec::new();
    let mut changed = |change_type: &'static str, profile: Uuid, event: &ContactEvent, detail| {
        transitions.push(TaskTransition {
            change_type,
            profile,
            event_id: event.event_id,
            detail,
        });
    };
    for (event, profile) in inserted {
        match event.event_type {
            EventType::TaskCreated => {
                let (Some(id), Some(due_at), Some(title)) =
                    (task_id(event), due_at(event), event.subject.as_deref())
                else {
                    continue;
                };
                let statement = transaction
                    .prepare_cached(
                        "INSERT INTO tasks (id, customer_id, case_id, title, channel, due_at,
                                            assignee, status, created_at, created_by)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .await?;
                let channel = attribute(event, TASK_CHANNEL).unwrap_or("phone");
                let created = transaction
                    .execute(
                        &statement,
                        &[
                            &id,
                            profile,
                            &event.case_id,
                            &title,
                            &channel,
                            &due_at,
                            &attribute(event, TASK_ASSIGNEE),
                            &event.occurred_at,
                            &event.agent_id,
                        ],
                    )
                    .await?;
                if created == 1 {
                    let assignee = attribute(event, TASK_ASSIGNEE).map(str::to_owned);
                    let detail =
                        task_detail(id, "open", Some(due_at), Some(channel.to_owned()), assignee);
                    changed("task.created", *profile, event, detail);
                }
            }
            EventType::TaskCompleted => {
                let Some(id) = task_id(event) else { continue };
                let statement = transaction
                    .prepare_cached(
                        "UPDATE tasks SET status = 'done', completed_at = $2, updated_at = now()
                         WHERE id = $1 RETURNING due_at, channel, assignee",
                    )
                    .await?;
                if let Some(row) = transaction
                    .query_opt(&statement, &[&id, &event.occurred_at])
                    .await?
                {
                    let detail = task_detail(id, "done", row.get(0), row.get(1), row.get(2));
                    changed("task.completed", *profile, event, detail);
                }
            }
            EventType::TaskRescheduled => {
                let (Some(id), Some(due_at)) = (task_id(event), due_at(event)) else {
                    continue;
                };
                let statement = transaction
                    .prepare_cached(
                        "UPDATE tasks SET due_at = $2, assignee = COALESCE($3, assignee),
                                status = 'open', completed_at = NULL, updated_at = now()
                         WHERE id = $1 RETURNING due_at, channel, assignee",
                    )
                    .await?;
                if let Some(row) = transaction
                    .query_opt(
                        &statement,
                        &[&id, &due_at, &attribute(event, TASK_ASSIGNEE)],
                    )
                    .await?
                {
                    let detail = task_detail(id, "open", row.get(0), row.get(1), row.get(2));
                    changed("task.rescheduled", *profile, event, detail);
                }
            }
            _ => {}
        }
    }
    Ok(transitions)
}
