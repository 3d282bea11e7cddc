#!/usr/bin/env bash
# One worker's memory under the day's mixed load, then under 32 searches at once.
#
# Fills a fresh database (100,000 posts, 50,000 conversations), starts one worker and runs
# wrk for MIXED_DURATION with a script that sends, request by request, what guests,
# customers and staff do: topic and category pages, the inbox and conversations, the queue
# and its live refresh, searches (logged in, so not rate-limited) over the forum and the
# own conversations. The worker's resident memory is sampled every 5 s. Then 32
# connections search at once for SEARCH_DURATION: the search slots (one per core) let
# the rest wait up to 2 s and answer 503 with Retry-After, which is counted apart from
# errors. Prints a table and appends it to bench/RESULTS.md.
#
# Settings (environment): CUSTOMERS TOPICS POSTS CONVERSATIONS (demo size), FILLED (a data
# folder filled earlier with the same demo command, copied instead of filling anew), THREADS
# CONNECTIONS MIXED_DURATION SEARCH_DURATION (wrk), PYTHON, RESULTS, CEILING_DIR.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
CUSTOMERS="${CUSTOMERS:-5000}"
TOPICS="${TOPICS:-5000}"
POSTS="${POSTS:-100000}"
CONVERSATIONS="${CONVERSATIONS:-50000}"
WORKERS=1
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
MIXED_DURATION="${MIXED_DURATION:-300}"
SEARCH_DURATION="${SEARCH_DURATION:-30}"
DURATION="${MIXED_DURATION}s"
WARMUP=0
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

if [[ -n "${FILLED:-}" ]]; then
    copy_filled "$FILLED"
else
    echo "== Filling $DATA: $CUSTOMERS customers, $TOPICS topics, $POSTS posts, $CONVERSATIONS conversations"
    fill_demo --customers "$CUSTOMERS" --topics "$TOPICS" --posts "$POSTS" --conversations "$CONVERSATIONS"
fi
start_server
WORKER_PID="$(pgrep -P "$SERVER_PID" -f 'multiprocessing|uvicorn' | head -n 1 || true)"
WORKER_PID="${WORKER_PID:-$SERVER_PID}"
rss() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$WORKER_PID/status"; }
RSS_START="$(rss)"

read -r CUSTOMER_ID CUSTOMER_EMAIL < <(sql "SELECT u.id, u.email FROM users u
    JOIN conversations c ON c.customer_id = u.id WHERE u.role = 'customer'
    GROUP BY u.id ORDER BY count(*) DESC, u.id LIMIT 1")
STAFF_EMAIL="$(sql "SELECT email FROM users WHERE role = 'staff' ORDER BY id LIMIT 1")"
CUSTOMER="$(log_in "$CUSTOMER_EMAIL" demo-passwort)"
STAFF="$(log_in "$STAFF_EMAIL" demo-passwort)"

# The requests, as a wrk Lua script: each request the next entry of a shuffled list.
"$PYTHON" - "$DATA/board.db" "$CUSTOMER_ID" "$CUSTOMER" "$STAFF" >"$DATA/mixed.lua" <<'PY'
import random, sqlite3, sys
from pathlib import Path
from urllib.parse import quote
sys.path.insert(0, str(Path("bench").resolve()))
from search_profile import QUERIES  # noqa: E402

database, customer_id, customer, staff = sys.argv[1:]
db = sqlite3.connect(database)
topics = [row[0] for row in db.execute(
    "SELECT id FROM topics WHERE deleted_at IS NULL ORDER BY random() LIMIT 200")]
slugs = [row[0] for row in db.execute("SELECT slug FROM categories")]
own = [row[0] for row in db.execute(
    "SELECT number FROM conversations WHERE customer_id = ? LIMIT 20", (customer_id,))]
queue = [row[0] for row in db.execute(
    "SELECT number FROM conversations ORDER BY random() LIMIT 100")]
rng = random.Random(1)
mix = (  # (weight, who, path maker): guests 40 %, customers 35 %, staff 25 %
    (25, "", lambda: f"/t/{rng.choice(topics)}"),
    (10, "", lambda: f"/c/{rng.choice(slugs)}"),
    (5, "", lambda: "/"),
    (12, "c", lambda: f"/t/{rng.choice(topics)}"),
    (8, "c", lambda: "/inbox"),
    (7, "c", lambda: f"/inbox/{rng.choice(own)}"),
    (8, "c", lambda: f"/search?scope=all&q={quote(rng.choice(QUERIES))}"),
    (10, "s", lambda: "/staff"),
    (5, "s", lambda: "/staff/queue/live?status=open&assigned=all"),
    (7, "s", lambda: f"/staff/t/{rng.choice(queue)}"),
    (3, "s", lambda: f"/search?scope=all&q={quote(rng.choice(QUERIES))}"),
)
cookies = {"": "", "c": customer, "s": staff}
entries = []
for weight, who, path in mix:
    entries += [(path(), cookies[who]) for _ in range(weight * 10)]
rng.shuffle(entries)
print("local requests = {")
for path, cookie in entries:
    print(f'  {{"{path}", "{cookie}"}},')
print("}")
print(Path("bench/statuses.lua").read_text())
PY

echo "== Mixed load: wrk -t$THREADS -c$CONNECTIONS -d${MIXED_DURATION}s, RSS every 5 s"
RSS_PEAK="$RSS_START"
(
    while sleep 5; do rss || break; echo; done
) >"$DATA/rss.txt" 2>/dev/null &
SAMPLER=$!
MIXED="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${MIXED_DURATION}s" --timeout 10s -s "$DATA/mixed.lua" "$BASE")"
kill "$SAMPLER" 2>/dev/null || true
RSS_PEAK="$(sort -n "$DATA/rss.txt" | tail -n 1)"
RSS_MIXED="$(rss)"
echo "$MIXED" | grep -E 'Requests/sec|status|percentiles'

echo "== 32 searches at once: wrk -t$THREADS -c32 -d${SEARCH_DURATION}s, a customer, forum and own conversations"
"$PYTHON" - "$CUSTOMER" >"$DATA/search.lua" <<'PY'
import sys
from pathlib import Path
from urllib.parse import quote
sys.path.insert(0, str(Path("bench").resolve()))
from search_profile import QUERIES  # noqa: E402

print("local requests = {")
for query in (*QUERIES, "Paket Rücksendung"):
    print(f'  {{"/search?scope=all&q={quote(query)}", "{sys.argv[1]}"}},')
print("}")
print(Path("bench/statuses.lua").read_text())
PY
(
    while sleep 2; do rss || break; echo; done
) >"$DATA/rss-search.txt" 2>/dev/null &
SAMPLER=$!
SEARCH="$(wrk -t"$THREADS" -c32 -d"${SEARCH_DURATION}s" --timeout 10s -s "$DATA/search.lua" "$BASE")"
kill "$SAMPLER" 2>/dev/null || true
RSS_SEARCH_PEAK="$(sort -n "$DATA/rss-search.txt" | tail -n 1)"
echo "$SEARCH" | grep -E 'Requests/sec|status|percentiles'

row() {  # row LABEL WRK-OUTPUT RSS-PEAK
    local rps statuses p50 p99
    rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$2")"
    statuses="$(awk '$1 == "status" {printf "%s%s: %s", sep, $2, $3; sep = ", "}' <<<"$2")"
    read -r p50 _p95 p99 < <(awk '$1 == "percentiles-us" {printf "%.1f %.1f %.1f", $2 / 1000, $3 / 1000, $4 / 1000}' <<<"$2")
    echo "| $1 | $rps | $p50 | $p99 | $statuses | $3 MiB |"
}
TABLE="$(
    echo "| phase | requests/s | p50 ms | p99 ms | responses by status | worker RSS, peak |"
    echo "|---|---:|---:|---:|---|---:|"
    row "mixed: guests, customers, staff, searches; ${MIXED_DURATION} s, $CONNECTIONS connections" "$MIXED" "$RSS_PEAK"
    row "32 logged-in searches at once, ${SEARCH_DURATION} s" "$SEARCH" "$RSS_SEARCH_PEAK"
)"
MACHINE="$(machine_and_code)"
{
    results_header
    printf '\n## Mixed load and concurrent searches, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `%sCUSTOMERS=%s TOPICS=%s POSTS=%s CONVERSATIONS=%s bench/mixed.sh`\n' \
        "${FILLED:+FILLED=<folder filled by the same demo command> }" \
        "$CUSTOMERS" "$TOPICS" "$POSTS" "$CONVERSATIONS"
    printf -- '- server: `python run.py --workers 1`, SQLite; worker RSS at the start %s MiB, after the mixed load %s MiB; demo fill took %.0f s\n' \
        "$RSS_START" "$RSS_MIXED" "$FILL_SECONDS"
    echo "$MACHINE"
    printf '\n%s\n' "$TABLE"
} >>"$RESULTS"
printf '\n%s\n' "$TABLE"
echo "Appended to $RESULTS"
