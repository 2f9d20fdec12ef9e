//! The delivery queue's logic that does not depend on how SQL reaches the database: planning a
//! publish (idempotency, matching, suppression), assembling claimed jobs, the rows a completion
//! writes, webhook health. The PostgreSQL backend runs it through sqlx (`queue_sqlx.rs`, whose
//! statements take lists as arrays), the embedded store on its writer thread (`writer/`, with
//! the statements below).

use std::collections::BTreeMap;
use std::sync::Arc;

use tidings_core::event::{Event, Sender};
use tidings_core::fasthash::{HashMap, HashSet};
use tidings_core::seal::Keyring;
use tidings_core::webhook::{Status, Webhook, WebhookSpec};

use crate::{Completion, Job, NextState, PublishOutcome, PublishRequest, Result, StoreError};
use crate::{json_text, parse_json};

/// A repeated idempotency key within this window returns the first result.
pub(crate) const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

pub(crate) const WEBHOOK_COLS: &str = "id, workspace_id, owner_client_id, status, spec, updated, created_at, disabled_reason, previous_secret, previous_secret_expires";
/// [`WEBHOOK_COLS`] of a table aliased `w`.
pub(crate) static WEBHOOK_COLS_OF_W: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    WEBHOOK_COLS
        .split(", ")
        .map(|c| format!("w.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
});
pub(crate) const EVENT_COLS: &str = "e.id AS e_id, e.type AS e_type, e.workspace_id AS e_workspace_id, e.data AS e_data, e.branch_id AS e_branch_id, e.business_unit_id AS e_business_unit_id, e.subject_id AS e_subject_id, e.sender AS e_sender, e.origin_client_id AS e_origin_client_id, e.idempotency_key AS e_idempotency_key, e.occurred_at AS e_occurred_at, e.created_at AS e_created_at";

/// Columns of the embedded store's `INSERT INTO events`: those of [`event_values`], then the
/// lowest and highest id of the event's deliveries ([`id_range`]), through which its deliveries
/// are found (migration 0009).
pub(crate) const EVENT_INSERT: &str = "INSERT INTO events (id, type, workspace_id, data, branch_id, business_unit_id, subject_id, sender, origin_client_id, idempotency_key, occurred_at, created_at, deliveries, suppressed, first_delivery, last_delivery) ";
/// Columns of `INSERT INTO deliveries` for a new delivery (leased at once when handed off).
pub(crate) const DELIVERY_INSERT: &str = "INSERT INTO deliveries (id, event_id, webhook_id, workspace_id, state, attempts, next_attempt_at, created_at, updated_at, lease_owner) ";
pub(crate) const ATTEMPT_INSERT: &str = "INSERT INTO attempts (id, delivery_id, attempt_no, started_at, duration_ms, outcome, status, request_headers, response_headers, response_body, error) ";
/// One delivery's next state: `$1` now, `$2` the lease owner, `$3` the delivery, then state,
/// attempts, next_attempt_at, status and outcome. Single-row by primary key, so SQLite updates it
/// in one pass (no temporary table, no statement journal). Guarded by the lease: a node whose
/// lease expired and was taken over must not overwrite the new owner's progress.
pub(crate) const DELIVERY_UPDATE: &str = "UPDATE deliveries SET state = $4, attempts = $5, next_attempt_at = $6, lease_owner = NULL, \
     last_status = COALESCE($7, last_status), last_outcome = COALESCE($8, last_outcome), updated_at = $1 \
     WHERE id = $3 AND lease_owner = $2 AND state = 'pending'";
/// A success ends the failing streak. `last_success_at` is kept to the minute: the row is only
/// rewritten when something changes, not on every success of a busy webhook.
pub(crate) const HEALTH_OK: &str = "UPDATE webhooks SET last_success_at = $2, failing_since = NULL WHERE id = $1 \
     AND (failing_since IS NOT NULL OR last_success_at IS NULL OR last_success_at < $2 - 60000)";
/// The resolution of `last_success_at` in [`HEALTH_OK`]: after it wrote `t`, it changes nothing
/// up to `t` + this while no failure starts a streak.
pub(crate) const SUCCESS_RESOLUTION_MS: i64 = 60_000;
/// A failure starts a streak unless one is running.
pub(crate) const HEALTH_FAILING: &str =
    "UPDATE webhooks SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL";
/// Disables a webhook failing since `$2` or earlier (`$3` reason, `$4` now).
pub(crate) const DISABLE_IF_FAILING: &str = "UPDATE webhooks SET status = 'disabled', disabled_reason = $3, updated = $4 \
     WHERE id = $1 AND status = 'enabled' AND failing_since IS NOT NULL AND failing_since <= $2 \
     RETURNING id, workspace_id, spec, disabled_reason";
/// Disables a webhook at once (`$2` unused, `$3` reason, `$4` now).
pub(crate) const DISABLE_NOW: &str = "UPDATE webhooks SET status = 'disabled', disabled_reason = $3, updated = $4 \
     WHERE id = $1 AND status = 'enabled' AND $2 = $2 RETURNING id, workspace_id, spec, disabled_reason";
pub(crate) const AUTO_DISABLE_REASON: &str =
    "no successful delivery since the failures began; disabled automatically";
pub(crate) const CANCEL_CLAIMED: &str =
    "UPDATE deliveries SET state = 'cancelled', lease_owner = NULL, updated_at = $2 WHERE id = $1";
/// Gives claimed deliveries back (`$1` owner, `$2` due time), then the id list and `)`.
pub(crate) const RELEASE: &str = "UPDATE deliveries SET lease_owner = NULL, next_attempt_at = $2 WHERE state = 'pending' AND lease_owner = $1 AND id IN (";
pub(crate) const STATUS_PATHS: &str = "SELECT name, status_path FROM event_types";

/// `(p, p+1, …), (…)`: `rows` tuples of `cols` numbered placeholders starting after `first`.
pub(crate) fn placeholders(first: usize, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 6);
    let mut n = first;
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            n += 1;
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&n.to_string());
        }
        s.push(')');
    }
    s
}

/// `$first+1, …, $first+n`: a list for `IN (…)`.
pub(crate) fn in_list(first: usize, n: usize) -> String {
    (first + 1..=first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The claim: leases the due deliveries (oldest first), skipping `excluded` webhooks. `$1`
/// owner, `$2` lease end, `$3` now, `$4` limit, then the excluded webhook ids.
pub(crate) fn claim_sql(excluded: usize) -> String {
    let exclude = if excluded == 0 {
        String::new()
    } else {
        // Webhooks already at their in-flight limit on this node wait their turn in the queue.
        format!(" AND webhook_id NOT IN ({})", in_list(4, excluded))
    };
    format!(
        "UPDATE deliveries SET lease_owner = $1, next_attempt_at = $2 WHERE id IN (SELECT id FROM deliveries \
         WHERE state = 'pending' AND next_attempt_at <= $3{exclude} ORDER BY next_attempt_at LIMIT $4) \
         RETURNING id, attempts, event_id, webhook_id"
    )
}

/// Reads a column of a result row, whichever driver produced it.
pub(crate) trait Cols {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn flag(&self, col: &str) -> Result<bool>;
}

/// A webhook from its row, its secrets opened with `keys`.
pub(crate) fn webhook_from<R: Cols>(row: &R, keys: &Keyring) -> Result<Webhook> {
    let mut spec: WebhookSpec = parse_json("webhook spec", &row.text("spec")?)?;
    crate::sealing::open_spec(keys, &mut spec)?;
    // The status column is authoritative: Tidings disables webhooks without rewriting the spec.
    let status = row.text("status")?;
    spec.status = Status::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("webhook status {status}")))?;
    let previous = crate::sealing::open_previous(keys, row.opt_text("previous_secret")?)?;
    let previous_expires = row.opt_int("previous_secret_expires")?;
    Ok(Webhook {
        id: row.text("id")?,
        workspace_id: row.text("workspace_id")?,
        spec,
        updated: row.int("updated")?,
        disabled_reason: row.opt_text("disabled_reason")?,
        previous_secret: previous.zip(previous_expires),
        owner_client_id: row.opt_text("owner_client_id")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn event_from<R: Cols>(row: &R) -> Result<Event> {
    let sender = row.opt_text("e_sender")?;
    Ok(Event {
        id: row.text("e_id")?,
        kind: row.text("e_type")?,
        workspace_id: row.text("e_workspace_id")?,
        data: row.text("e_data")?,
        branch_id: row.opt_text("e_branch_id")?,
        business_unit_id: row.opt_text("e_business_unit_id")?,
        subject_id: row.opt_text("e_subject_id")?,
        sender: sender
            .map(|s| parse_json::<Sender>("sender", &s))
            .transpose()?,
        origin_client_id: row.opt_text("e_origin_client_id")?,
        idempotency_key: row.opt_text("e_idempotency_key")?,
        occurred_at: row.int("e_occurred_at")?,
        created_at: row.int("e_created_at")?,
    })
}

/// A webhook that subscribes to a (type, workspace) pair, as matching reads it.
#[derive(Debug, Clone)]
pub(crate) struct MatchRow {
    pub id: String,
    pub workspace_id: String,
    pub owner: Option<String>,
    pub descendants: bool,
    pub branches: String,
    pub units: String,
}

impl MatchRow {
    pub(crate) fn from<R: Cols>(row: &R) -> Result<Self> {
        Ok(Self {
            id: row.text("id")?,
            workspace_id: row.text("workspace_id")?,
            owner: row.opt_text("owner_client_id")?,
            descendants: row.flag("apply_to_all_descendants")?,
            branches: row.text("branches")?,
            units: row.text("business_units")?,
        })
    }
}

fn unit_matches(filter: &str, unit: Option<&str>) -> Result<bool> {
    if filter == "[]" {
        return Ok(true);
    }
    let list: Vec<String> = parse_json("unit filter", filter)?;
    Ok(list.is_empty() || unit.is_some_and(|u| list.iter().any(|l| l == u)))
}

/// An earlier event with the same idempotency key.
#[derive(Debug, Clone)]
pub(crate) struct Earlier {
    pub id: String,
    pub deliveries: i64,
    pub suppressed: i64,
    pub created_at: i64,
}

/// The idempotency keys of a batch (to look up at once).
pub(crate) fn idempotency_keys(batch: &[PublishRequest]) -> Vec<&str> {
    batch
        .iter()
        .filter_map(|r| r.event.idempotency_key.as_deref())
        .collect()
}

/// The distinct (type, workspace chain) pairs to match.
pub(crate) fn match_keys(batch: &[PublishRequest]) -> Vec<(&str, &[String])> {
    let mut seen = HashSet::default();
    batch
        .iter()
        .filter(|r| r.deliver && !r.workspace_chain.is_empty())
        .map(|r| (r.event.kind.as_str(), r.workspace_chain.as_slice()))
        .filter(|k| seen.insert(*k))
        .collect()
}

/// Matching webhooks by (type, workspace chain); shared, so the embedded writer can keep them.
pub(crate) type Matches<'a> = HashMap<(&'a str, &'a [String]), Arc<[MatchRow]>>;

/// What a publish writes.
pub(crate) struct PublishPlan<'a> {
    pub out: Vec<PublishOutcome>,
    /// Events whose idempotency key is past its window: the key is freed.
    pub stale_keys: Vec<String>,
    /// New events with their (deliveries, suppressed) counts and where their deliveries are in
    /// `deliveries` (an event's are planned one after another).
    pub events: Vec<(&'a Event, i64, i64, std::ops::Range<usize>)>,
    /// New deliveries: (id, event, webhook id).
    pub deliveries: Vec<Planned<'a>>,
}

/// Decides what a batch publishes: duplicates (in the batch or within the idempotency window)
/// return the first result, matching webhooks get a delivery unless the event came from their
/// own client (no echo).
pub(crate) fn plan_publish<'a>(
    batch: &'a [PublishRequest],
    earlier: &HashMap<String, Earlier>,
    matches: &'a Matches<'a>,
) -> Result<PublishPlan<'a>> {
    let mut plan = PublishPlan {
        out: Vec::with_capacity(batch.len()),
        stale_keys: Vec::new(),
        events: Vec::with_capacity(batch.len()),
        deliveries: Vec::new(),
    };
    let mut in_batch: HashMap<&str, usize> = HashMap::default();
    for req in batch {
        let e = &req.event;
        if let Some(key) = e.idempotency_key.as_deref() {
            if let Some(&first) = in_batch.get(key) {
                let mut repeat = plan.out[first].clone();
                repeat.duplicate = true;
                plan.out.push(repeat);
                continue;
            }
            match earlier.get(key) {
                Some(x) if x.created_at > e.created_at - IDEMPOTENCY_WINDOW_MS => {
                    plan.out.push(PublishOutcome {
                        id: x.id.clone(),
                        deliveries: x.deliveries,
                        suppressed: x.suppressed,
                        duplicate: true,
                    });
                    continue;
                }
                // The earlier use is past the window: the key is free again.
                Some(x) => plan.stale_keys.push(x.id.clone()),
                None => {}
            }
            in_batch.insert(key, plan.out.len());
        }
        let mut suppressed = 0i64;
        let mut targets = 0i64;
        let start = plan.deliveries.len();
        if req.deliver
            && let Some(rows) = matches.get(&(e.kind.as_str(), req.workspace_chain.as_slice()))
        {
            for m in rows.iter() {
                if m.workspace_id != e.workspace_id && !m.descendants {
                    continue;
                }
                if !unit_matches(&m.branches, e.branch_id.as_deref())?
                    || !unit_matches(&m.units, e.business_unit_id.as_deref())?
                {
                    continue;
                }
                if m.owner.is_some() && m.owner == e.origin_client_id {
                    suppressed += 1;
                    continue;
                }
                targets += 1;
                plan.deliveries
                    .push((tidings_core::ids::message_id(), e, m.id.as_str()));
            }
        }
        plan.events
            .push((e, targets, suppressed, start..plan.deliveries.len()));
        plan.out.push(PublishOutcome {
            id: e.id.clone(),
            deliveries: targets,
            suppressed,
            duplicate: false,
        });
    }
    Ok(plan)
}

/// The lowest and highest id of `planned` (an event's deliveries), `None` without any.
pub(crate) fn id_range<'p>(planned: &'p [Planned<'_>]) -> (Option<&'p str>, Option<&'p str>) {
    let ids = planned.iter().map(|d| d.0.as_str());
    (ids.clone().min(), ids.max())
}

/// The bind values of one event row, in the order of [`EVENT_INSERT`].
pub(crate) struct EventValues<'a> {
    pub e: &'a Event,
    pub sender: Option<String>,
    pub targets: i64,
    pub suppressed: i64,
}

pub(crate) fn event_values<'a>(e: &'a Event, targets: i64, suppressed: i64) -> EventValues<'a> {
    EventValues {
        e,
        sender: e.sender.as_ref().map(json_text),
        targets,
        suppressed,
    }
}

/// A claimed delivery as the claim statement returns it: (id, attempts, event id, webhook id).
pub(crate) type Claimed = (String, i64, String, String);

/// A planned new delivery: (id, event, webhook id).
pub(crate) type Planned<'a> = (String, &'a Event, &'a str);

/// Workspaces whose `fields` are needed: those of events going to webhooks with `extraFields`.
pub(crate) fn wanted_fields<'a>(
    claimed: &[Claimed],
    events: &'a HashMap<String, Arc<Event>>,
    webhooks: &HashMap<String, Arc<Webhook>>,
) -> HashSet<&'a str> {
    claimed
        .iter()
        .filter(|c| {
            webhooks
                .get(&c.3)
                .is_some_and(|w| !w.spec.extra_fields.is_empty())
        })
        .filter_map(|c| events.get(&c.2).map(|e| e.workspace_id.as_str()))
        .collect()
}

/// Builds the jobs of a claim; returns them and the claimed deliveries whose webhook or event
/// is gone (to cancel).
pub(crate) fn assemble_jobs<'c>(
    claimed: &'c [Claimed],
    events: &HashMap<String, Arc<Event>>,
    webhooks: &HashMap<String, Arc<Webhook>>,
    status_paths: &HashMap<String, Option<String>>,
    fields: &HashMap<String, String>,
) -> (Vec<Job>, Vec<&'c str>) {
    let mut jobs = Vec::with_capacity(claimed.len());
    let mut gone = Vec::new();
    for (delivery_id, attempts, event_id, webhook_id) in claimed {
        let (Some(event), Some(webhook)) = (events.get(event_id), webhooks.get(webhook_id)) else {
            gone.push(delivery_id.as_str());
            continue;
        };
        jobs.push(Job {
            attempts: *attempts,
            delivery_id: delivery_id.clone(),
            status_path: status_paths.get(&event.kind).cloned().flatten(),
            company_fields: fields.get(&event.workspace_id).cloned(),
            event: Arc::clone(event),
            webhook: Arc::clone(webhook),
        });
    }
    (jobs, gone)
}

/// The values a completion writes to its delivery: (state, next_attempt_at, status, outcome).
pub(crate) fn next_row(c: &Completion, now: i64) -> (&'static str, i64, Option<i64>, Option<&str>) {
    let (state, next_at) = match c.next {
        NextState::Succeeded => ("succeeded", now),
        NextState::Failed => ("failed", now),
        NextState::Cancelled => ("cancelled", now),
        NextState::Retry(at) => ("pending", at),
    };
    let (status, outcome) = c
        .attempt
        .as_ref()
        .map_or((None, None), |a| (a.status, Some(a.outcome.as_str())));
    (state, next_at, status, outcome)
}

/// Webhook health of a batch, one entry per webhook that had an attempt: true when any of its
/// attempts succeeded (the failing streak ends), false when all failed (a streak starts).
pub(crate) fn health(completions: &[Completion]) -> BTreeMap<&str, bool> {
    let mut health: BTreeMap<&str, bool> = BTreeMap::new();
    for c in completions.iter().filter(|c| c.attempt.is_some()) {
        let ok = c.next == NextState::Succeeded;
        let entry = health.entry(c.webhook_id.as_str()).or_insert(ok);
        *entry = *entry || ok;
    }
    health
}

/// Webhooks to disable: (id, SQL, reason). Those a receiver told to go away (410) at once; those
/// failing in this batch if their streak began at or before the cut-off.
pub(crate) fn to_disable<'a>(
    completions: &'a [Completion],
    health: &BTreeMap<&'a str, bool>,
) -> Vec<(&'a str, &'static str, String)> {
    let mut out: Vec<(&str, &'static str, String)> = completions
        .iter()
        .filter_map(|c| {
            c.disable_webhook
                .as_ref()
                .map(|r| (c.webhook_id.as_str(), DISABLE_NOW, r.clone()))
        })
        .collect();
    for (webhook_id, ok) in health {
        if !*ok {
            out.push((
                webhook_id,
                DISABLE_IF_FAILING,
                AUTO_DISABLE_REASON.to_string(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_success_resolution_is_the_one_of_the_statement() {
        let window = format!("$2 - {SUCCESS_RESOLUTION_MS}");
        assert!(HEALTH_OK.contains(&window), "{HEALTH_OK}");
    }

    #[test]
    fn placeholders_number_rows_after_the_fixed_parameters() {
        assert_eq!(placeholders(2, 2, 3), "($3, $4, $5), ($6, $7, $8)");
        assert_eq!(in_list(4, 3), "$5, $6, $7");
        assert!(claim_sql(2).contains("webhook_id NOT IN ($5, $6)"));
        assert!(!claim_sql(0).contains("NOT IN"));
    }
}
