//! The queue's statements as the writer thread runs them: rusqlite, statements prepared once
//! and cached, `$N` parameters bound by name (the hot ones rewritten to `?N` and bound by
//! number). The decisions are `queue_rules.rs`'s, shared with PostgreSQL.

use std::sync::Arc;

use rusqlite::types::ToSql;
use rusqlite::{Connection, Statement};
use tidings_core::event::Event;
use tidings_core::fasthash::{HashMap, HashSet};
use tidings_core::webhook::WebhookSpec;

use super::read_cache::ReadCache;
use crate::handoff::{Leases, Offer};
use crate::queue_rules::{self, Claimed, Cols, Earlier, MatchRow};
use crate::{
    Completion, DisabledWebhook, Job, PublishRequest, Published, Result, StoreError, parse_json,
};

impl Cols for rusqlite::Row<'_> {
    fn text(&self, col: &str) -> Result<String> {
        Ok(self.get(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(self.get(col)?)
    }
    fn int(&self, col: &str) -> Result<i64> {
        Ok(self.get(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.get(col)?)
    }
    fn flag(&self, col: &str) -> Result<bool> {
        Ok(self.get(col)?)
    }
}

/// `sql` with its `$N` parameters written `?N`: SQLite numbers `?N` N, so [`bind`] binds
/// `args[N - 1]` to it without looking up names. For the statements run for every event,
/// delivery and attempt (built once, in [`Hot`]; none of them has a `$` and a digit inside a
/// string literal, which this would rewrite too).
fn positional(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// The statements of the hot paths, with positional parameters.
struct Hot {
    insert_event: String,
    insert_delivery: String,
    insert_attempt: String,
    delivery_update: String,
    health_ok: String,
    health_failing: String,
}

static HOT: std::sync::LazyLock<Hot> = std::sync::LazyLock::new(|| Hot {
    insert_event: positional(&format!(
        "{}VALUES {}",
        queue_rules::EVENT_INSERT,
        queue_rules::placeholders(0, 1, 16)
    )),
    insert_delivery: positional(&format!(
        "{}VALUES {}",
        queue_rules::DELIVERY_INSERT,
        queue_rules::placeholders(0, 1, 10)
    )),
    insert_attempt: positional(&format!(
        "{}VALUES {} ON CONFLICT (delivery_id, attempt_no, id) DO NOTHING",
        queue_rules::ATTEMPT_INSERT,
        queue_rules::placeholders(0, 1, 11)
    )),
    delivery_update: positional(queue_rules::DELIVERY_UPDATE),
    health_ok: positional(queue_rules::HEALTH_OK),
    health_failing: positional(queue_rules::HEALTH_FAILING),
});

/// Binds `args` to the statement's parameters: `?N` takes `args[N - 1]` (see [`positional`]),
/// and so does `$N` (SQLite numbers named parameters by first appearance, so the names decide).
fn bind(st: &mut Statement<'_>, args: &[&dyn ToSql]) -> Result<()> {
    let count = st.parameter_count();
    if st.parameter_name(1).is_some_and(|n| n.starts_with('?')) {
        if count > args.len() {
            return Err(StoreError::Embedded(format!(
                "statement parameter {} has no value",
                args.len() + 1
            )));
        }
        for (i, arg) in args.iter().enumerate().take(count) {
            st.raw_bind_parameter(i + 1, *arg)?;
        }
        return Ok(());
    }
    for i in 1..=count {
        let n = st
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .filter(|n| *n < args.len())
            .ok_or_else(|| StoreError::Embedded(format!("statement parameter {i} has no value")))?;
        st.raw_bind_parameter(i, args[n])?;
    }
    Ok(())
}

fn execute(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<usize> {
    let mut st = conn.prepare_cached(sql)?;
    run(&mut st, args)
}

/// Binds `args` and runs the statement once. The loops over rows take their statement from the
/// cache once and run it for every row: looking it up hashes its whole text, and giving it back
/// moves it in the cache's LRU list (~4% of the writer when it was done per row).
fn run(st: &mut Statement<'_>, args: &[&dyn ToSql]) -> Result<usize> {
    bind(st, args)?;
    Ok(st.raw_execute()?)
}

/// Runs a query and maps every row.
fn query<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    mut map: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut st = conn.prepare_cached(sql)?;
    bind(&mut st, args)?;
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// The values of an `IN` list, padded (see [`pad`]).
fn refs<'a>(ids: impl IntoIterator<Item = &'a &'a str>) -> Vec<&'a dyn ToSql> {
    let mut v: Vec<&dyn ToSql> = ids.into_iter().map(|s| s as &dyn ToSql).collect();
    pad(&mut v);
    v
}

/// Pads the values of an `IN` list to a power-of-two count with repeats of the first (which
/// change nothing, for `IN` as for `NOT IN`): a handful of statement shapes, each prepared once
/// and cached, instead of one per list length.
fn pad(values: &mut Vec<&dyn ToSql>) {
    if let Some(&first) = values.first() {
        values.resize(values.len().next_power_of_two(), first);
    }
}

/// The enabled webhooks of `chain`'s workspaces that subscribe to `kind`, read through the
/// (workspace, type) index (the cost follows the matches, not all webhooks) with all their
/// columns: the webhooks go into the cache too, so the publish's jobs need not read them again.
fn read_matches(
    conn: &Connection,
    cache: &mut ReadCache,
    kind: &str,
    chain: &[String],
) -> Result<Arc<[MatchRow]>> {
    let mut args: Vec<&dyn ToSql> = vec![&kind];
    args.extend(chain.iter().map(|w| w as &dyn ToSql));
    let sql = format!(
        "SELECT w.apply_to_all_descendants, w.branches, w.business_units, {} FROM webhook_triggers t \
         JOIN webhooks w ON w.id = t.webhook_id WHERE t.event_type = $1 AND w.status = 'enabled' AND t.workspace_id IN ({}) ORDER BY w.id",
        *queue_rules::WEBHOOK_COLS_OF_W,
        queue_rules::in_list(1, chain.len())
    );
    let keys = cache.keyring();
    let rows = query(conn, &sql, &args, |r| {
        Ok((MatchRow::from(r)?, queue_rules::webhook_from(r, &keys)?))
    })?;
    let mut matched = Vec::with_capacity(rows.len());
    for (m, w) in rows {
        cache.put_webhook(Arc::new(w));
        matched.push(m);
    }
    let matched: Arc<[MatchRow]> = matched.into();
    cache.put_matches(kind, chain, Arc::clone(&matched));
    Ok(matched)
}

/// The events already published under the batch's idempotency keys.
fn read_earlier(conn: &Connection, batch: &[PublishRequest]) -> Result<HashMap<String, Earlier>> {
    let keys = queue_rules::idempotency_keys(batch);
    let mut earlier: HashMap<String, Earlier> = HashMap::default();
    if !keys.is_empty() {
        let args = refs(&keys);
        let sql = format!(
            "SELECT idempotency_key, id, deliveries, suppressed, created_at FROM events WHERE idempotency_key IN ({})",
            queue_rules::in_list(0, args.len())
        );
        for (key, x) in query(conn, &sql, &args, |r| {
            Ok((
                r.text("idempotency_key")?,
                Earlier {
                    id: r.text("id")?,
                    deliveries: r.int("deliveries")?,
                    suppressed: r.int("suppressed")?,
                    created_at: r.int("created_at")?,
                },
            ))
        })? {
            earlier.insert(key, x);
        }
    }
    Ok(earlier)
}

/// Inserts the plan's events and deliveries; a delivery the offer had room for is leased to this
/// node already.
fn insert_planned(
    conn: &Connection,
    plan: &queue_rules::PublishPlan<'_>,
    res: &Leases,
) -> Result<()> {
    // One cached single-row statement per table: without a thread hop per statement, rows are
    // cheapest one at a time.
    let mut insert_event = conn.prepare_cached(&HOT.insert_event)?;
    for (e, targets, suppressed, planned) in &plan.events {
        let v = queue_rules::event_values(e, *targets, *suppressed);
        let (first, last) = queue_rules::id_range(&plan.deliveries[planned.clone()]);
        run(
            &mut insert_event,
            &[
                &e.id,
                &e.kind,
                &e.workspace_id,
                &e.data,
                &e.branch_id,
                &e.business_unit_id,
                &e.subject_id,
                &v.sender,
                &e.origin_client_id,
                &e.idempotency_key,
                &e.occurred_at,
                &e.created_at,
                &v.targets,
                &v.suppressed,
                &first,
                &last,
            ],
        )?;
    }
    drop(insert_event);
    let mut insert_delivery = conn.prepare_cached(&HOT.insert_delivery)?;
    for (i, (id, e, webhook_id)) in plan.deliveries.iter().enumerate() {
        let (owner, due) = res.lease(i, e.created_at);
        run(
            &mut insert_delivery,
            &[
                id,
                &e.id,
                webhook_id,
                &e.workspace_id,
                &"pending",
                &0i64,
                &due,
                &e.created_at,
                &e.created_at,
                &owner,
            ],
        )?;
    }
    drop(insert_delivery);
    Ok(())
}

/// One publish batch in the writer's open transaction: reads what idempotency keys name
/// already, matches each event (from the read cache when it can), plans, inserts, and turns the
/// deliveries leased under `offer` into jobs for the worker.
pub(super) fn publish(
    conn: &Connection,
    cache: &mut ReadCache,
    batch: &[PublishRequest],
    offer: Option<Offer>,
) -> Result<(Published, Vec<Job>)> {
    let earlier = read_earlier(conn, batch)?;
    let mut matches: queue_rules::Matches<'_> = HashMap::default();
    for key in queue_rules::match_keys(batch) {
        let rows = match cache.matches(key.0, key.1) {
            Some(rows) => Arc::clone(rows),
            None => read_matches(conn, cache, key.0, key.1)?,
        };
        matches.insert(key, rows);
    }
    let plan = queue_rules::plan_publish(batch, &earlier, &matches)?;
    let res = Leases::new(offer, plan.deliveries.iter().map(|d| d.2));
    if !plan.stale_keys.is_empty() {
        let sql = format!(
            "UPDATE events SET idempotency_key = NULL WHERE id IN ({})",
            queue_rules::in_list(0, plan.stale_keys.len())
        );
        let args: Vec<&dyn ToSql> = plan.stale_keys.iter().map(|s| s as &dyn ToSql).collect();
        execute(conn, &sql, &args)?;
    }
    insert_planned(conn, &plan, &res)?;
    let published = Published {
        queued: res.queued(),
        outcomes: plan.out,
    };
    if !res.any() {
        return Ok((published, Vec::new()));
    }
    // The handed-off deliveries become jobs here, from the events in hand: no claim, no
    // re-reading.
    let (claimed, events, now) = res.claimed(&plan.deliveries);
    let jobs = jobs_for(conn, cache, &claimed, &events, now)?;
    Ok((published, jobs))
}

/// `prefix` + `n` placeholders + `)`.
fn by_ids(prefix: &str, n: usize) -> String {
    format!("{prefix}{})", queue_rules::in_list(0, n))
}

pub(super) fn claim(
    conn: &Connection,
    cache: &mut ReadCache,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
    exclude: &[String],
) -> Result<Vec<Job>> {
    let mut excluded: Vec<&dyn ToSql> = exclude.iter().map(|w| w as &dyn ToSql).collect();
    pad(&mut excluded);
    let sql = queue_rules::claim_sql(excluded.len());
    let mut args: Vec<&dyn ToSql> = vec![&owner, &lease_until, &now, &limit];
    args.extend(excluded);
    let claimed: Vec<Claimed> = query(conn, &sql, &args, |r| {
        Ok((
            r.text("id")?,
            r.int("attempts")?,
            r.text("event_id")?,
            r.text("webhook_id")?,
        ))
    })?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let event_ids: HashSet<&str> = claimed.iter().map(|c| c.2.as_str()).collect();
    let args = refs(&event_ids);
    let sql = by_ids(
        &format!(
            "SELECT {} FROM events e WHERE e.id IN (",
            queue_rules::EVENT_COLS
        ),
        args.len(),
    );
    let events: HashMap<String, Arc<Event>> = query(conn, &sql, &args, |r| {
        queue_rules::event_from(r).map(|e| (e.id.clone(), Arc::new(e)))
    })?
    .into_iter()
    .collect();
    jobs_for(conn, cache, &claimed, &events, now)
}

/// The jobs of leased deliveries: their webhooks and context from the cache, or read by primary
/// key (and cached). A delivery whose webhook (or event) is gone is cancelled (`now` is its time).
fn jobs_for(
    conn: &Connection,
    cache: &mut ReadCache,
    claimed: &[Claimed],
    events: &HashMap<String, Arc<Event>>,
    now: i64,
) -> Result<Vec<Job>> {
    let missing: HashSet<&str> = claimed
        .iter()
        .map(|c| c.3.as_str())
        .filter(|id| !cache.webhooks().contains_key(*id))
        .collect();
    if !missing.is_empty() {
        let args = refs(&missing);
        let sql = by_ids(
            &format!(
                "SELECT {} FROM webhooks WHERE id IN (",
                queue_rules::WEBHOOK_COLS
            ),
            args.len(),
        );
        let keys = cache.keyring();
        for w in query(conn, &sql, &args, |r| queue_rules::webhook_from(r, &keys))? {
            cache.put_webhook(Arc::new(w));
        }
    }
    let status_paths = match cache.status_paths() {
        Some(paths) => Arc::clone(paths),
        None => {
            let paths = query(conn, queue_rules::STATUS_PATHS, &[], |r| {
                Ok((r.text("name")?, r.opt_text("status_path")?))
            })?
            .into_iter()
            .collect();
            cache.put_status_paths(paths)
        }
    };
    let wanted: HashSet<&str> = queue_rules::wanted_fields(claimed, events, cache.webhooks())
        .into_iter()
        .filter(|id| !cache.fields().contains_key(*id))
        .collect();
    if !wanted.is_empty() {
        let args = refs(&wanted);
        let sql = by_ids(
            "SELECT id, fields FROM workspaces WHERE id IN (",
            args.len(),
        );
        for (id, fields) in query(conn, &sql, &args, |r| {
            Ok((r.text("id")?, r.text("fields")?))
        })? {
            cache.put_fields(id, fields);
        }
    }
    let (jobs, gone) = queue_rules::assemble_jobs(
        claimed,
        events,
        cache.webhooks(),
        &status_paths,
        cache.fields(),
    );
    // The webhook was deleted after the delivery was queued: nothing to send.
    for id in gone {
        execute(conn, queue_rules::CANCEL_CLAIMED, &[&id, &now])?;
    }
    Ok(jobs)
}

pub(super) fn complete(
    conn: &Connection,
    cache: &mut ReadCache,
    owner: &str,
    now: i64,
    completions: &[Completion],
    cutoff: i64,
) -> Result<Vec<DisabledWebhook>> {
    let mut insert_attempt = conn.prepare_cached(&HOT.insert_attempt)?;
    let mut delivery_update = conn.prepare_cached(&HOT.delivery_update)?;
    for c in completions {
        if let Some(a) = &c.attempt {
            run(
                &mut insert_attempt,
                &[
                    &a.id,
                    &a.delivery_id,
                    &a.attempt_no,
                    &a.started_at,
                    &a.duration_ms,
                    &a.outcome,
                    &a.status,
                    &a.request_headers,
                    &a.response_headers,
                    &a.response_body,
                    &a.error,
                ],
            )?;
        }
        let (state, next_at, status, outcome) = queue_rules::next_row(c, now);
        run(
            &mut delivery_update,
            &[
                &now,
                &owner,
                &c.delivery_id,
                &state,
                &c.attempts,
                &next_at,
                &status,
                &outcome,
            ],
        )?;
    }
    drop((insert_attempt, delivery_update));
    let health = queue_rules::health(completions);
    for (webhook_id, ok) in &health {
        if !*ok {
            cache.forget_success(webhook_id);
            execute(conn, &HOT.health_failing, &[webhook_id, &now])?;
        } else if !cache.success_recorded(webhook_id, now)
            && execute(conn, &HOT.health_ok, &[webhook_id, &now])? == 1
        {
            cache.put_success(webhook_id, now);
        }
    }
    let mut disabled = Vec::new();
    for (webhook_id, sql, reason) in queue_rules::to_disable(completions, &health) {
        let rows = query(conn, sql, &[&webhook_id, &cutoff, &reason, &now], |r| {
            Ok((r.text("id")?, r.text("workspace_id")?, r.text("spec")?))
        })?;
        for (id, workspace_id, spec) in rows {
            let spec: WebhookSpec = parse_json("webhook spec", &spec)?;
            disabled.push(DisabledWebhook {
                id,
                workspace_id,
                url: spec.url,
                reason: reason.clone(),
            });
        }
    }
    if !disabled.is_empty() {
        // Matching must no longer find them.
        cache.clear();
    }
    Ok(disabled)
}

pub(super) fn release(conn: &Connection, owner: &str, ids: &[String], at: i64) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut listed: Vec<&dyn ToSql> = ids.iter().map(|i| i as &dyn ToSql).collect();
    pad(&mut listed);
    let sql = format!(
        "{}{})",
        queue_rules::RELEASE,
        queue_rules::in_list(2, listed.len())
    );
    let mut args: Vec<&dyn ToSql> = vec![&owner, &at];
    args.extend(listed);
    execute(conn, &sql, &args)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{HOT, bind, positional};
    use rusqlite::Connection;
    use rusqlite::types::ToSql;

    #[test]
    fn positional_parameters_keep_their_numbers() {
        assert_eq!(
            positional("UPDATE t SET a = $2, b = $10 WHERE id = $1 AND c = '$x'"),
            "UPDATE t SET a = ?2, b = ?10 WHERE id = ?1 AND c = '$x'"
        );
        assert!(
            !HOT.delivery_update.contains('$'),
            "{}",
            HOT.delivery_update
        );
        assert!(HOT.insert_event.contains("?16)"), "{}", HOT.insert_event);
    }

    /// `?N` and `$N` take `args[N - 1]` whatever order they appear in.
    #[test]
    fn both_parameter_styles_bind_by_number() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in ["SELECT $2, $1, $2", "SELECT ?2, ?1, ?2"] {
            let mut st = conn.prepare(sql).unwrap();
            bind(&mut st, &[&"one" as &dyn ToSql, &"two"]).unwrap();
            let mut rows = st.raw_query();
            let row = rows.next().unwrap().unwrap();
            let got: (String, String, String) = (
                row.get(0).unwrap(),
                row.get(1).unwrap(),
                row.get(2).unwrap(),
            );
            assert_eq!(got, ("two".into(), "one".into(), "two".into()), "{sql}");
        }
        let mut st = conn.prepare("SELECT ?1, ?2").unwrap();
        assert!(bind(&mut st, &[&1i64 as &dyn ToSql]).is_err());
    }
}
