#!/usr/bin/env bash
# One machine, two set-ups: one uvicorn worker on SQLite against four workers on PostgreSQL,
# on the same data. Fills a SQLite demo (forum and 50,000 conversations), measures the topic
# page (guest and logged-in customer) and the staff queue with wrk, copies the data to a
# throwaway PostgreSQL cluster with `python -m board migrate-to`, and measures the same pages
# again with BOARD_DATABASE_URL pointing there. Prints the table and appends it, with the
# machine it ran on, to bench/RESULTS.md. Needs root (PostgreSQL runs as the postgres user
# through runuser) and the postgresql package.
#
# Settings (environment): CUSTOMERS TOPICS POSTS CONVERSATIONS (demo size), PG_WORKERS,
# THREADS CONNECTIONS DURATION WARMUP (wrk), PYTHON, RESULTS (output file).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
CUSTOMERS="${CUSTOMERS:-5000}"
TOPICS="${TOPICS:-5000}"
POSTS="${POSTS:-100000}"
CONVERSATIONS="${CONVERSATIONS:-50000}"
PG_WORKERS="${PG_WORKERS:-4}"
WORKERS=1
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[[ -x "$PGBIN/initdb" ]] || { echo "scale.sh: PostgreSQL is not installed" >&2; exit 1; }
PGDIR="$(mktemp -d "${TMPDIR:-/tmp}/supportboard-bench-pg.XXXXXX")"
chown postgres "$PGDIR"
PGPORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
EXTRA_CLEANUP='runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$PGDIR"'

echo "== Filling $DATA: $CUSTOMERS customers, $TOPICS topics, $POSTS posts, $CONVERSATIONS conversations"
fill_demo --customers "$CUSTOMERS" --topics "$TOPICS" --posts "$POSTS" --conversations "$CONVERSATIONS"

read -r TOPIC_ID TOPIC_POSTS < <(sql "SELECT id, post_count FROM topics
    WHERE post_count >= 20 AND deleted_at IS NULL ORDER BY post_count, id LIMIT 1")
CUSTOMER_EMAIL="$(sql "SELECT email FROM users WHERE role = 'customer' ORDER BY id LIMIT 1")"
STAFF_EMAIL="$(sql "SELECT email FROM users WHERE role = 'staff' ORDER BY id LIMIT 1")"

measure_pages() {  # SETUP: the topic page for a guest and a customer, the queue for staff
    local setup="$1" customer staff
    customer="$(log_in "$CUSTOMER_EMAIL" demo-passwort)"
    staff="$(log_in "$STAFF_EMAIL" demo-passwort)"
    measure "/t/$TOPIC_ID" "topic, $TOPIC_POSTS posts ($setup)" guest ""
    measure "/t/$TOPIC_ID" "topic, $TOPIC_POSTS posts ($setup)" customer "Cookie: board_session=$customer"
    measure "/staff" "queue: open, VIP first ($setup)" staff "Cookie: board_session=$staff"
}

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after ${WARMUP}s warm-up each)"
WORKERS=1
start_server
measure_pages "SQLite, 1 worker"
stop_server

echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR" start >/dev/null
runuser -u postgres -- "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres board
PG_URL="postgresql://postgres@127.0.0.1:$PGPORT/board"
started=$(date +%s.%N)
"$PYTHON" -m board migrate-to "$PG_URL" | tail -n 4
COPY_SECONDS="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')"

export BOARD_DATABASE_URL="$PG_URL"
WORKERS="$PG_WORKERS"
start_server
measure_pages "PostgreSQL, $PG_WORKERS workers"
stop_server

TABLE="$(results_table)"
MACHINE="$(machine_and_code)"
{
    results_header
    printf '\n## One SQLite worker against %s workers on PostgreSQL, %s\n\n' "$PG_WORKERS" "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `CUSTOMERS=%s TOPICS=%s POSTS=%s CONVERSATIONS=%s PG_WORKERS=%s bench/scale.sh`; each URL: `wrk -t%s -c%s -d%s --latency` after a %ss warm-up\n' \
        "$CUSTOMERS" "$TOPICS" "$POSTS" "$CONVERSATIONS" "$PG_WORKERS" "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
    printf -- '- servers: `python run.py --workers 1` on SQLite, then `--workers %s` with `BOARD_DATABASE_URL` on PostgreSQL %s (default settings, fsync on) on the same machine, wrk too; demo fill %.0f s, `migrate-to` %.0f s\n' \
        "$PG_WORKERS" "$("$PGBIN/postgres" --version | awk '{print $3}')" "$FILL_SECONDS" "$COPY_SECONDS"
    printf '%s\n\n' "$MACHINE"
    printf '%s\n' "$TABLE"
} >>"$RESULTS"

echo
echo "$TABLE"
echo
echo "Appended to $RESULTS"
