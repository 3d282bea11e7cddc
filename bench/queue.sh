#!/usr/bin/env bash
# Staff queue throughput: fills a fresh database with demo content including 50,000
# conversations, starts the server and runs wrk against the staff pages as a logged-in staff
# member. Prints a table and appends it, with the machine it ran on, to bench/RESULTS.md.
#
# Settings (environment): CUSTOMERS CONVERSATIONS (demo size), WORKERS (uvicorn processes),
# THREADS CONNECTIONS DURATION (wrk), WARMUP (seconds of wrk before each measured run),
# PYTHON, RESULTS (output file).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
CUSTOMERS="${CUSTOMERS:-5000}"
CONVERSATIONS="${CONVERSATIONS:-50000}"
WORKERS="${WORKERS:-1}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

echo "== Filling $DATA with $CUSTOMERS customers and $CONVERSATIONS conversations"
fill_demo --customers "$CUSTOMERS" --topics 200 --posts 2000 --conversations "$CONVERSATIONS"
start_server

read -r OPEN SOLVED < <(sql "SELECT sum(status = 'open'), sum(status = 'solved') FROM conversations")
read -r NUMBER MESSAGES < <(sql "SELECT number, message_count FROM conversations
    WHERE kind = 'support' ORDER BY message_count DESC, number LIMIT 1")
STAFF_EMAIL="$(sql "SELECT email FROM users WHERE role = 'staff' ORDER BY id LIMIT 1")"
SESSION="$(log_in "$STAFF_EMAIL" demo-passwort)"
COOKIE="Cookie: board_session=$SESSION"

PAGES=(
    "/staff|queue: open, VIP first, longest waiting"
    "/staff?status=open&assigned=me|queue: open and mine"
    "/staff?status=solved&page=20|queue: solved, page 20"
    "/staff/home|staff home: counts, latest"
    "/staff/t/$NUMBER|conversation with $MESSAGES messages and the customer panel"
)

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after ${WARMUP}s warm-up each)"
measure_ceiling  # before and after the pages: the machine's state during the run
for entry in "${PAGES[@]}"; do
    measure "${entry%%|*}" "${entry#*|}" staff "$COOKIE"
done
measure_ceiling

TABLE="$(results_table)"
# Before the entry is written: RESULTS.md itself must not count as an uncommitted change.
MACHINE="$(machine_and_code)"
{
    results_header
    printf '\n## Staff queue, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `CUSTOMERS=%s CONVERSATIONS=%s WORKERS=%s bench/queue.sh`; each URL: `wrk -t%s -c%s -d%s --latency` after a %ss warm-up\n' \
        "$CUSTOMERS" "$CONVERSATIONS" "$WORKERS" "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
    printf -- '- server: `python run.py --workers %s`, SQLite, one logged-in staff member, wrk on the same machine; demo fill took %.0f s\n' \
        "$WORKERS" "$FILL_SECONDS"
    printf -- '- data: %s conversations, %s open, %s solved\n' "$CONVERSATIONS" "$OPEN" "$SOLVED"
    printf '%s\n\n' "$MACHINE"
    printf '%s\n' "$TABLE"
} >>"$RESULTS"

echo
echo "$TABLE"
echo
echo "Appended to $RESULTS"
