#!/usr/bin/env bash
# Rebuilds the number of messages and notes per conversation from the event feed.
#
#   UPZENTO_URL=http://127.0.0.1:8080 UPZENTO_TOKEN=upz_… docs/examples/message_counts.sh
#
# Prints one JSON object, conversation id → count. It reads only the three event types that
# add a message, page by page, following `next_cursor` until the feed has caught up
# (`has_more` false). A long-running consumer would store the last `next_cursor` together with
# its counts (in one transaction) and start from it next time with `&after=<cursor>`.
set -euo pipefail
: "${UPZENTO_URL:?set UPZENTO_URL to the server, e.g. http://127.0.0.1:8080}"
: "${UPZENTO_TOKEN:?set UPZENTO_TOKEN to an auditor or admin token}"

counts='{}'
cursor="${UPZENTO_AFTER:-}"
while :; do
  page=$(curl -fsS -H "Authorization: Bearer $UPZENTO_TOKEN" \
    "$UPZENTO_URL/api/v1/events?limit=500&types=MessageReceived,MessagePosted,NoteAdded${cursor:+&after=$cursor}")
  counts=$(jq -c --argjson counts "$counts" \
    'reduce .data[] as $e ($counts; .[$e.subject | ltrimstr("conversations/")] += 1)' <<<"$page")
  cursor=$(jq -r .next_cursor <<<"$page")
  [ "$(jq -r .has_more <<<"$page")" = true ] || break
done
echo "$counts"
