#!/usr/bin/env bash
# Statistics on a year of a busy shop: fills a fresh database with 50,000 conversations
# (python -m board demo), times stats.compute() in-process for the last 365 and 30 days
# (bench/stats_profile.py), then runs wrk on /staff/stats as a logged-in staff member, the
# HTML page and the CSV for 365 days, the last 30 days, all time, and the CSV of all time's
# requests; ends with the worker's resident memory. Prints the tables and appends them, with
# the machine they ran on, to bench/RESULTS.md. See bench/README.md.
#
# Settings (environment): CUSTOMERS CONVERSATIONS (demo size), FILLED (a data folder filled
# earlier with the same demo command, copied instead of filling anew), ROUNDS (in-process
# calls), WORKERS, THREADS CONNECTIONS DURATION WARMUP (wrk), PYTHON, RESULTS (output file).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
CUSTOMERS="${CUSTOMERS:-5000}"
CONVERSATIONS="${CONVERSATIONS:-50000}"
ROUNDS="${ROUNDS:-10}"
WORKERS="${WORKERS:-1}"
# One connection: how long the owner waits for the page on an idle server.
THREADS="${THREADS:-1}"
CONNECTIONS="${CONNECTIONS:-1}"
DURATION="${DURATION:-20s}"
WARMUP="${WARMUP:-2}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

if [[ -n "${FILLED:-}" ]]; then
    copy_filled "$FILLED"
else
    echo "== Filling $DATA with $CUSTOMERS customers and $CONVERSATIONS conversations"
    fill_demo --customers "$CUSTOMERS" --topics 200 --posts 2000 --conversations "$CONVERSATIONS"
fi

echo "== stats.compute() in-process, $ROUNDS rounds"
PROFILE="$("$PYTHON" bench/stats_profile.py --rounds "$ROUNDS")"
echo "$PROFILE"

start_server
STAFF_EMAIL="$(sql "SELECT email FROM users WHERE role = 'staff' ORDER BY id LIMIT 1")"
SESSION="$(log_in "$STAFF_EMAIL" demo-passwort)"
COOKIE="Cookie: board_session=$SESSION"
TO="$(date +%F)"
FROM="$(date -d '364 days ago' +%F)"

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after ${WARMUP}s warm-up each)"
measure "/staff/stats?from=$FROM&to=$TO" "365 days" staff "$COOKIE"
measure "/staff/stats?from=$FROM&to=$TO&format=csv" "365 days as CSV" staff "$COOKIE"
measure "/staff/stats" "the last 30 days" staff "$COOKIE"
# All time (the daily aggregates), the page and the CSV of every request with its times.
FIRST="$(sql "SELECT substr(min(created_at), 1, 10) FROM conversations")"
measure "/staff/stats?from=$FIRST&to=$TO" "all time" staff "$COOKIE"
measure "/staff/stats/conversations?from=$FIRST&to=$TO&format=csv" "all requests as CSV" staff "$COOKIE"

WORKER_PID="$(pgrep -P "$SERVER_PID" -f 'multiprocessing|uvicorn' | head -n 1 || true)"
RSS_MIB="$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/${WORKER_PID:-$SERVER_PID}/status")"
echo "  worker RSS after the runs: $RSS_MIB MiB"

TABLE="$(results_table)"
MACHINE="$(machine_and_code)"
{
    results_header
    printf '\n## Statistics, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `%sCUSTOMERS=%s CONVERSATIONS=%s ROUNDS=%s bench/stats.sh`; each URL: `wrk -t%s -c%s -d%s --latency` after a %ss warm-up\n' \
        "${FILLED:+FILLED=<folder filled by the same demo command> }" "$CUSTOMERS" "$CONVERSATIONS" "$ROUNDS" \
        "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
    printf -- '- server: `python run.py --workers %s`, SQLite, one logged-in staff member, wrk on the same machine; demo fill took %.0f s; worker RSS after the runs: %s MiB\n' \
        "$WORKERS" "$FILL_SECONDS" "$RSS_MIB"
    printf '%s\n\n' "$MACHINE"
    printf '%s\n\n' "$PROFILE"
    printf '%s\n' "$TABLE"
} >>"$RESULTS"

echo
echo "$TABLE"
echo
echo "Appended to $RESULTS"
