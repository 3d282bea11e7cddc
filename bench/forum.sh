#!/usr/bin/env bash
# Forum read throughput: fills a fresh database with demo content, starts the server on a free
# port and runs wrk against the public forum pages. Prints a table and appends it, with the
# machine it ran on, to bench/RESULTS.md. See bench/README.md.
#
# Settings (environment): CUSTOMERS TOPICS POSTS (demo size), WORKERS (uvicorn processes),
# THREADS CONNECTIONS DURATION (wrk), WARMUP (seconds of wrk before each measured run),
# PYTHON, RESULTS (output file).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
CUSTOMERS="${CUSTOMERS:-2000}"
TOPICS="${TOPICS:-5000}"
POSTS="${POSTS:-100000}"
WORKERS="${WORKERS:-1}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

echo "== Filling $DATA with $CUSTOMERS customers, $TOPICS topics, $POSTS posts"
fill_demo --customers "$CUSTOMERS" --topics "$TOPICS" --posts "$POSTS"
start_server

# A real category with enough topics for page 20, and a topic with at least 20 posts.
read -r SLUG CATEGORY_TOPICS < <(sql "SELECT slug, topic_count FROM categories
    WHERE NOT staff_only ORDER BY topic_count DESC LIMIT 1")
read -r TOPIC_ID TOPIC_POSTS < <(sql "SELECT id, post_count FROM topics
    WHERE post_count >= 20 AND deleted_at IS NULL ORDER BY post_count, id LIMIT 1")
if [[ -z "${TOPIC_ID:-}" ]]; then
    echo "forum.sh: no topic with 20 posts; raise POSTS" >&2
    exit 1
fi

if (( CATEGORY_TOPICS <= 19 * 25 )); then  # topics_per_page is 25
    echo "forum.sh: $SLUG has $CATEGORY_TOPICS topics, so page 20 is past the end" >&2
fi

PAGES=(
    "/|forum index"
    "/c/$SLUG|category, page 1"
    "/c/$SLUG?page=20|category, page 20"
    "/t/$TOPIC_ID|topic, 20 posts"
)

# A logged-in customer gets pages rendered for them (unread badge, reply forms), never the
# guests' cached copies: the second pass measures the full render path.
CUSTOMER_EMAIL="$(sql "SELECT email FROM users WHERE role = 'customer' ORDER BY id LIMIT 1")"
SESSION="$(log_in "$CUSTOMER_EMAIL" demo-passwort)"

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after ${WARMUP}s warm-up each)"
measure_ceiling  # before and after the pages: the machine's state during the run
for entry in "${PAGES[@]}"; do
    measure "${entry%%|*}" "${entry#*|}" guest ""
done
for entry in "${PAGES[@]}"; do
    measure "${entry%%|*}" "${entry#*|}" customer "Cookie: board_session=$SESSION"
done
measure_ceiling

TABLE="$(results_table)"
# Before the entry is written: RESULTS.md itself must not count as an uncommitted change.
MACHINE="$(machine_and_code)"

{
    results_header
    printf '\n## Forum pages, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `CUSTOMERS=%s TOPICS=%s POSTS=%s WORKERS=%s bench/forum.sh`; each URL: `wrk -t%s -c%s -d%s --latency` after a %ss warm-up\n' \
        "$CUSTOMERS" "$TOPICS" "$POSTS" "$WORKERS" "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
    printf -- '- server: `python run.py --workers %s`, SQLite, `BOARD_FLOOD_SECONDS=0`, guests (cached pages) and one logged-in customer (rendered per request), wrk on the same machine; demo fill took %.0f s\n' \
        "$WORKERS" "$FILL_SECONDS"
    printf -- '- data: category `%s` (%s topics), topic %s (%s posts)\n' "$SLUG" "$CATEGORY_TOPICS" "$TOPIC_ID" "$TOPIC_POSTS"
    printf '%s\n\n' "$MACHINE"
    printf '%s\n' "$TABLE"
} >>"$RESULTS"

echo
echo "$TABLE"
echo
echo "Appended to $RESULTS"
