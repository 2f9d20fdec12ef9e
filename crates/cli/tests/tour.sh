#!/usr/bin/env bash
# The README's tour with the command line only (no curl): tests/cli.rs runs it against a fresh
# server and a `tidings receive` checking signatures. Needs TIDINGS (the binary), TIDINGS_URL,
# TIDINGS_OPERATOR_KEY, RECEIVER (the receiver's base URL) and jq.
set -euo pipefail
: "${TIDINGS:?}" "${TIDINGS_URL:?}" "${TIDINGS_OPERATOR_KEY:?}" "${RECEIVER:?}"
export TIDINGS_OUTPUT=json
t() { "$TIDINGS" "$@"; }
fail() { echo "tour: $*" >&2; exit 1; }

# 1. The operator creates a workspace with integration turned on, and an event type.
t workspaces create --id company1Workspace --name "Company 1" --integration-enabled \
  | jq -e '.id == "company1Workspace" and .integrationEnabled' >/dev/null
t event-types create tour.created --description "The tour's event" --sample '{"n": 0}' >/dev/null
t event-types update tour.created --description "The tour's own event" --sample '{"n": 1}' \
  | jq -e '.description == "The tour'"'"'s own event"' >/dev/null

# 2. ... and OAuth client credentials for it (the secret is shown only here).
CLIENT=$(t clients create company1Workspace --name billing)
TIDINGS_CLIENT_ID=$(jq -r .clientId <<<"$CLIENT")
TIDINGS_CLIENT_SECRET=$(jq -r .clientSecret <<<"$CLIENT")
export TIDINGS_CLIENT_ID TIDINGS_CLIENT_SECRET TIDINGS_WORKSPACE=company1Workspace

# 3. The integrator creates a webhook pointing at the receiver (the CLI fetches the token).
WEBHOOK=$(t webhooks create --name "Billing webhooks" --descendants --secret supersecuresecret \
  --url "$RECEIVER/quickbookwebhook" --triggers workspace-created,tour.created 2>/dev/null)
WEBHOOK_ID=$(jq -r .id <<<"$WEBHOOK")

# 4. Something happens in the product: the operator publishes an event (data from stdin).
echo '{"companyName": "company1", "type": "child", "maxProtectedUsers": "25"}' \
  | t events publish --type workspace-created --to company1Workspace --data @- \
  | jq -e '.deliveries == 1' >/dev/null || fail "the event made no delivery"

# 5. The delivery succeeds (the receiver checks the signature and answers 204).
for _ in $(seq 1 150); do
  STATE=$(t deliveries list "$WEBHOOK_ID" | jq -r '.[0].state // "none"')
  [ "$STATE" = succeeded ] && break
  sleep 0.1
done
[ "$STATE" = succeeded ] || fail "the delivery is $STATE"

# Every list command's JSON parses.
t workspaces list | jq -e 'type == "array" and length >= 1' >/dev/null
t clients list company1Workspace | jq -e 'type == "array"' >/dev/null
t event-types list | jq -e 'type == "array"' >/dev/null
t events list --of company1Workspace | jq -e 'length == 1 and .[0].type == "workspace-created"' >/dev/null
t webhooks list | jq -e '.[0].id == "'"$WEBHOOK_ID"'"' >/dev/null
t deliveries list "$WEBHOOK_ID" --state succeeded | jq -e 'length == 1' >/dev/null

# The rest of a webhook's life: a test notification, a retry, a replay, a new secret, delete.
t webhooks test "$WEBHOOK_ID" --type tour.created --data '{"n": 2}' | jq -e '.outcome == "ok"' >/dev/null || fail "the test notification failed"
DELIVERY=$(t deliveries list "$WEBHOOK_ID" | jq -r '.[0].id')
t deliveries retry "$DELIVERY" >/dev/null
t deliveries retry-failed "$WEBHOOK_ID" 2>/dev/null | jq -e 'length == 0' >/dev/null
t deliveries show "$DELIVERY" | jq -e '.id == "'"$DELIVERY"'"' >/dev/null
t webhooks replay "$WEBHOOK_ID" --since 1h | jq -e '.replayed == 0' >/dev/null
t webhooks rotate "$WEBHOOK_ID" | jq -e '.secret | startswith("whsec_")' >/dev/null
t webhooks update "$WEBHOOK_ID" --status disabled | jq -e '.status == "disabled"' >/dev/null

# Errors: the API's message on stderr, an exit code a script can test, nothing on stdout.
set +e
OUT=$(t workspaces show nosuch 2>/tmp/tidings-tour-err.$$); CODE=$?
set -e
[ "$CODE" = 4 ] || fail "a missing workspace exits $CODE, not 4"
[ -z "$OUT" ] || fail "an error printed on stdout"
grep -q "workspace not found" /tmp/tidings-tour-err.$$ || fail "stderr: $(cat /tmp/tidings-tour-err.$$)"
set +e
t webhooks create --url "$RECEIVER/x" --triggers no.such.type >/dev/null 2>/tmp/tidings-tour-err.$$; CODE=$?
set -e
[ "$CODE" = 3 ] || fail "an invalid webhook exits $CODE, not 3"
grep -q "triggers" /tmp/tidings-tour-err.$$ || fail "the refusal does not name the field"
set +e
TIDINGS_CLIENT_SECRET=wrong t webhooks list >/dev/null 2>&1; CODE=$?
set -e
[ "$CODE" = 5 ] || fail "wrong credentials exit $CODE, not 5"
rm -f /tmp/tidings-tour-err.$$

t webhooks delete "$WEBHOOK_ID" 2>/dev/null
t webhooks list | jq -e 'length == 0' >/dev/null

# A profile saved by `tidings login` replaces the variables; the file is its owner's only.
TIDINGS_CLI_CONFIG="$(mktemp -d)/cli.toml"
export TIDINGS_CLI_CONFIG
t login --profile tour 2>/dev/null
[ "$(stat -c %a "$TIDINGS_CLI_CONFIG")" = 600 ] || fail "the profile file is not 0600"
(
  unset TIDINGS_URL TIDINGS_OPERATOR_KEY TIDINGS_CLIENT_ID TIDINGS_CLIENT_SECRET TIDINGS_WORKSPACE
  t workspaces show company1Workspace | jq -e '.id == "company1Workspace"' >/dev/null
  t webhooks list | jq -e 'length == 0' >/dev/null
) || fail "the saved profile does not work"
rm -rf "$(dirname "$TIDINGS_CLI_CONFIG")"
echo "tour: ok"
