#!/usr/bin/env bash
# Search cost: fills a fresh database with demo content, times a full index rebuild and the
# in-process search() and suggest() calls (bench/search_profile.py), then starts the server
# on a free port and runs wrk against /search and /search/suggest, rotating through
# realistic queries. Prints the tables and appends them, with the machine they ran on, to
# bench/RESULTS.md. See bench/README.md.
#
# Settings (environment): CUSTOMERS TOPICS POSTS (demo size), ROUNDS (in-process passes over
# the queries), WORKERS (uvicorn processes), THREADS CONNECTIONS DURATION (wrk), WARMUP
# (seconds of wrk before each measured run), PYTHON, RESULTS (output file).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
CUSTOMERS="${CUSTOMERS:-2000}"
TOPICS="${TOPICS:-10000}"
POSTS="${POSTS:-100000}"
ROUNDS="${ROUNDS:-10}"
WORKERS="${WORKERS:-1}"
# One connection: the latency of one query on an idle server. Whoosh is pure Python, so
# more connections to one worker only queue up behind the GIL.
THREADS="${THREADS:-1}"
CONNECTIONS="${CONNECTIONS:-1}"
DURATION="${DURATION:-30s}"
WARMUP="${WARMUP:-3}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# What a search costs, not the guests' limit per address: every wrk request comes from
# 127.0.0.1, and would be answered 429 after the first 30 searches of a minute.
export BOARD_GUEST_SEARCHES_PER_MINUTE=0 BOARD_GUEST_SUGGESTIONS_PER_MINUTE=0
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

echo "== Filling $DATA with $CUSTOMERS customers, $TOPICS topics, $POSTS posts"
# `board demo` builds the search index once at its end; the rebuild below is timed alone.
fill_demo --customers "$CUSTOMERS" --topics "$TOPICS" --posts "$POSTS" --conversations 0

echo "== Rebuilding the index and calling search() and suggest() in-process"
PROFILE="$("$PYTHON" bench/search_profile.py --rebuild --markdown --rounds "$ROUNDS")"

# measure_queries PATH LABEL [--drafts]: wrk rotating through the queries of
# search_profile.py on PATH?q=...; appends a row to ROWS.
ROWS=()
measure_queries() {
    local path="$1" label="$2" lua="$DATA/queries-$RANDOM.lua" status out count rps p50 p95 p99
    local errors
    "$PYTHON" bench/search_profile.py --lua "$path" q ${3:+"$3"} >"$lua"
    status="$(curl -s -o "$DATA/page.out" -w '%{http_code}' "$BASE$path?q=Paket")"
    if [[ "$status" != "200" ]]; then
        echo "  $path answers HTTP $status, skipped" >&2
        ROWS+=("| \`$path\` | $label | HTTP $status | – | – | – | – | – |")
        return
    fi
    if [[ "$WARMUP" -gt 0 ]]; then
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$lua" "$BASE" >/dev/null
        sleep 2  # the server finishes what the warm-up left in flight
    fi
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency -s "$lua" "$BASE")"
    if ! grep -q '^percentiles-us [1-9]' <<<"$out"; then
        echo "  $path: no answer within $DURATION" >&2
        ROWS+=("| \`$path\` | $label | none within $DURATION | – | – | – | – | – |")
        return
    fi
    count="$(awk '/ requests in / {print $1}' <<<"$out")"
    rps="$(awk '/^Requests\/sec:/ {printf "%.1f", $2}' <<<"$out")"
    read -r p50 p95 p99 < <(awk '$1 == "percentiles-us" {
        printf "%.1f %.1f %.1f\n", $2 / 1000, $3 / 1000, $4 / 1000 }' <<<"$out")
    errors="$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
        for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END {print n + 0}' <<<"$out")"
    ROWS+=("| \`$path\` | $label | $count | $rps | $p50 | $p95 | $p99 | $errors |")
    printf '  %-18s %5s requests %6s req/s   p50 %7s ms   p95 %7s ms   p99 %7s ms   errors %s\n' \
        "$path" "$count" "$rps" "$p50" "$p95" "$p99" "$errors"
}

start_server
echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after ${WARMUP}s warm-up each)"
measure_queries /search "search box: 20 queries in turn, guest, forum"
measure_queries /search/suggest "new message: 10 drafts in turn" --drafts

TABLE="$(printf '| URL | queries | requests | requests/s | p50 ms | p95 ms | p99 ms | errors |\n'
    printf '|---|---|---:|---:|---:|---:|---:|---:|\n'
    printf '%s\n' "${ROWS[@]}")"
# Before the entry is written: RESULTS.md itself must not count as an uncommitted change.
MACHINE="$(machine_and_code)"
INDEXED_POSTS="$(sql "SELECT count(*) FROM posts")"

{
    results_header
    printf '\n## Search, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `CUSTOMERS=%s TOPICS=%s POSTS=%s WORKERS=%s bench/search.sh`; in-process: `bench/search_profile.py --rebuild --rounds %s`; each URL: `wrk -t%s -c%s -d%s --latency -s <queries>` after a %ss warm-up\n' \
        "$CUSTOMERS" "$TOPICS" "$POSTS" "$WORKERS" "$ROUNDS" "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
    printf -- '- server: `python run.py --workers %s`, SQLite, Whoosh, anonymous requests, wrk on the same machine; demo fill (with its own index build) took %.0f s\n' \
        "$WORKERS" "$FILL_SECONDS"
    printf -- '- data: %s forum posts in %s topics, no conversations\n' "$INDEXED_POSTS" "$TOPICS"
    printf '%s\n' "$MACHINE"
    printf '%s\n\n' "$PROFILE"
    printf '%s\n' "$TABLE"
} >>"$RESULTS"

echo
echo "$PROFILE"
echo
echo "$TABLE"
echo
echo "Appended to $RESULTS"
