#!/usr/bin/env bash
# The pages of the people logged in all day, as a share of the stack's ceiling: fills a fresh
# database (100,000 posts, 50,000 conversations), starts one worker and runs wrk against a
# customer's topic page and inbox and the staff queue and conversation, with a guest's topic
# page for comparison. The ceiling app (../shared/ceiling, /db-sync) is measured in the same
# run, before, between and after (the median counts). Ends with the worker's resident memory.
# Prints a table and appends it to bench/RESULTS.md.
#
# Settings (environment): CUSTOMERS TOPICS POSTS CONVERSATIONS (demo size), FILLED (a data
# folder filled earlier with the same demo command, copied instead of filling anew), THREADS
# CONNECTIONS DURATION (wrk), WARMUP (seconds of wrk before each measured run), PYTHON,
# RESULTS (output file), CEILING_DIR (the ceiling app).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
CUSTOMERS="${CUSTOMERS:-5000}"
TOPICS="${TOPICS:-5000}"
POSTS="${POSTS:-100000}"
CONVERSATIONS="${CONVERSATIONS:-50000}"
WORKERS=1
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3}"
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

read -r TOPIC_ID TOPIC_POSTS < <(sql "SELECT id, post_count FROM topics
    WHERE post_count >= 20 AND deleted_at IS NULL ORDER BY post_count, id LIMIT 1")
# The customer with the most conversations, and a request of theirs with the most messages.
read -r CUSTOMER_EMAIL CUSTOMER_CONVERSATIONS < <(sql "SELECT u.email, count(*) FROM users u
    JOIN conversations c ON c.customer_id = u.id WHERE u.role = 'customer'
    GROUP BY u.id ORDER BY count(*) DESC, u.id LIMIT 1")
read -r NUMBER MESSAGES < <(sql "SELECT number, message_count FROM conversations
    WHERE kind = 'support' ORDER BY message_count DESC, number LIMIT 1")
STAFF_EMAIL="$(sql "SELECT email FROM users WHERE role = 'staff' ORDER BY id LIMIT 1")"
CUSTOMER="Cookie: board_session=$(log_in "$CUSTOMER_EMAIL" demo-passwort)"
STAFF="Cookie: board_session=$(log_in "$STAFF_EMAIL" demo-passwort)"

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after ${WARMUP}s warm-up each)"
measure_ceiling
measure "/t/$TOPIC_ID" "topic, $TOPIC_POSTS posts" guest ""
measure "/t/$TOPIC_ID" "topic, $TOPIC_POSTS posts" customer "$CUSTOMER"
measure "/inbox" "inbox, $CUSTOMER_CONVERSATIONS conversations" customer "$CUSTOMER"
measure_ceiling
measure "/staff" "queue: open, VIP first" staff "$STAFF"
measure "/staff/t/$NUMBER" "conversation, $MESSAGES messages" staff "$STAFF"
measure_ceiling

WORKER_PID="$(pgrep -P "$SERVER_PID" -f 'multiprocessing|uvicorn' | head -n 1 || true)"
RSS_MIB="$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/${WORKER_PID:-$SERVER_PID}/status")"
echo "  worker RSS after the runs: $RSS_MIB MiB"

TABLE="$(results_table)"
# Before the entry is written: RESULTS.md itself must not count as an uncommitted change.
MACHINE="$(machine_and_code)"
{
    results_header
    printf '\n## Logged-in pages against the ceiling, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `%sCUSTOMERS=%s TOPICS=%s POSTS=%s CONVERSATIONS=%s bench/logged_in.sh`; each URL: `wrk -t%s -c%s -d%s --latency` after a %ss warm-up\n' \
        "${FILLED:+FILLED=<folder filled by the same demo command> }" "$CUSTOMERS" "$TOPICS" "$POSTS" "$CONVERSATIONS" "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
    printf -- '- server: `python run.py --workers 1`, SQLite; the ceiling app with one uvicorn worker before, between and after the pages (median); wrk on the same machine; demo fill took %.0f s\n' \
        "$FILL_SECONDS"
    printf -- '- worker RSS after the runs: %s MiB\n' "$RSS_MIB"
    printf '%s\n\n' "$MACHINE"
    printf '%s\n' "$TABLE"
} >>"$RESULTS"

echo
echo "$TABLE"
echo
echo "Appended to $RESULTS"
