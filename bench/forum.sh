#!/usr/bin/env bash
# Forum read throughput: fills a fresh database with demo content, starts the server on a free
# port and runs wrk against the public forum pages. Prints a table and appends it, with the
# machine it ran on, to bench/RESULTS.md. See bench/README.md.
#
# Settings (environment): CUSTOMERS TOPICS POSTS (demo size), WORKERS (uvicorn processes),
# THREADS CONNECTIONS DURATION (wrk), WARMUP (seconds of wrk before each measured run),
# PYTHON, RESULTS (output file).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
CUSTOMERS="${CUSTOMERS:-2000}"
TOPICS="${TOPICS:-5000}"
POSTS="${POSTS:-100000}"
WORKERS="${WORKERS:-1}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3}"
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

for tool in wrk curl "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "forum.sh: $tool is not installed" >&2; exit 1; }
done

DATA="$(mktemp -d "${TMPDIR:-/tmp}/supportboard-bench.XXXXXX")"
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do  # up to 5 s for a graceful shutdown
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        pkill -9 -P "$SERVER_PID" 2>/dev/null || true  # worker processes, if any
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export BOARD_DATA_DIR="$DATA"
export BOARD_FLOOD_SECONDS=0
cd "$ROOT"

echo "== Filling $DATA with $CUSTOMERS customers, $TOPICS topics, $POSTS posts"
fill_started=$(date +%s.%N)
timeout 600 "$PYTHON" -m board demo \
    --customers "$CUSTOMERS" --topics "$TOPICS" --posts "$POSTS" 2>"$DATA/demo.err" \
    || { tail -n 20 "$DATA/demo.err" >&2; exit 1; }
fill_seconds="$(awk -v a="$fill_started" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')"

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
echo "== Starting the server on $BASE ($WORKERS worker process(es))"
"$PYTHON" run.py --port "$PORT" --workers "$WORKERS" >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do  # up to 30 s
    curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "forum.sh: the server exited:" >&2
        tail -n 30 "$DATA/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS -o /dev/null "$BASE/healthz" || { echo "forum.sh: no /healthz after 30 s" >&2; exit 1; }

# A real category with enough topics for page 20, and a topic with at least 20 posts.
read -r SLUG CATEGORY_TOPICS TOPIC_ID TOPIC_POSTS < <("$PYTHON" - "$DATA/board.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
slug, topic_count = db.execute(
    "SELECT slug, topic_count FROM categories WHERE NOT staff_only"
    " ORDER BY topic_count DESC LIMIT 1"
).fetchone()
topic = db.execute(
    "SELECT id, post_count FROM topics WHERE post_count >= 20 AND deleted_at IS NULL"
    " ORDER BY post_count, id LIMIT 1"
).fetchone() or (None, None)
print(slug, topic_count, *topic)
EOF
)
if [[ "$TOPIC_ID" == "None" ]]; then
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

# wrk prints latencies as 812.00us, 3.21ms or 1.02s; the table shows milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000;
        else if (v ~ /s$/) n *= 1000
        printf "%.1f", n
    }'
}

# A logged-in customer gets pages rendered for them (unread badge, reply forms), never the
# guests' cached copies: the second pass measures the full render path.
CUSTOMER_EMAIL="$("$PYTHON" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT email FROM users WHERE role = '"'customer'"' ORDER BY id LIMIT 1").fetchone()[0])' "$DATA/board.db")"
JAR="$DATA/cookies.txt"
TOKEN="$(curl -fsS -c "$JAR" "$BASE/login" | grep -o 'name="csrf_token" value="[0-9a-f]*"' | head -n 1 | sed 's/.*value="//; s/"$//')"
curl -fsS -b "$JAR" -c "$JAR" -o /dev/null \
    --data-urlencode "csrf_token=$TOKEN" --data-urlencode "login=$CUSTOMER_EMAIL" \
    --data-urlencode "password=demo-passwort" "$BASE/login"
SESSION="$(awk '$6 == "board_session" {print $7}' "$JAR")"
[[ -n "$SESSION" ]] || { echo "forum.sh: could not log in as $CUSTOMER_EMAIL" >&2; exit 1; }

ROWS=()
measure() {  # path, label, who, extra curl/wrk header (or empty)
    local path="$1" label="$2" who="$3" header="$4" status out rps p50 p99 errors
    local -a hdr=()
    [[ -n "$header" ]] && hdr=(-H "$header")
    status="$(curl -s -o "$DATA/page.html" -w '%{http_code}' "${hdr[@]}" "$BASE$path")"
    if [[ "$status" != "200" ]]; then
        echo "  $path answers HTTP $status, skipped" >&2
        ROWS+=("| \`$path\` | $label | $who | HTTP $status | – | – | – |")
        return
    fi
    if [[ "$WARMUP" -gt 0 ]]; then
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "${hdr[@]}" "$BASE$path" >/dev/null
    fi
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency "${hdr[@]}" "$BASE$path")"
    rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    errors="$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
        for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END {print n + 0}' <<<"$out")"
    ROWS+=("| \`$path\` | $label | $who | $rps | $p50 | $p99 | $errors |")
    printf '  %-32s %-9s %8s req/s   p50 %7s ms   p99 %7s ms   errors %s\n' \
        "$path" "$who" "$rps" "$p50" "$p99" "$errors"
}

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after ${WARMUP}s warm-up each)"
for entry in "${PAGES[@]}"; do
    measure "${entry%%|*}" "${entry#*|}" guest ""
done
for entry in "${PAGES[@]}"; do
    measure "${entry%%|*}" "${entry#*|}" customer "Cookie: board_session=$SESSION"
done

TABLE="| URL | page | visitor | requests/s | p50 ms | p99 ms | errors |
|---|---|---|---:|---:|---:|---:|
$(printf '%s\n' "${ROWS[@]}")"

cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
memory="$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || true)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then commit="$commit (uncommitted changes)"; fi

{
    [[ -s "$RESULTS" ]] || printf '# Benchmark results\n\nAppended by the scripts in bench/ (see README.md); newest last.\n'
    printf '\n## Forum pages, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `CUSTOMERS=%s TOPICS=%s POSTS=%s WORKERS=%s bench/forum.sh`; each URL: `wrk -t%s -c%s -d%s --latency` after a %ss warm-up\n' \
        "$CUSTOMERS" "$TOPICS" "$POSTS" "$WORKERS" "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
    printf -- '- server: `python run.py --workers %s`, SQLite, `BOARD_FLOOD_SECONDS=0`, guests (cached pages) and one logged-in customer (rendered per request), wrk on the same machine; demo fill took %.0f s\n' \
        "$WORKERS" "$fill_seconds"
    printf -- '- data: category `%s` (%s topics), topic %s (%s posts)\n' "$SLUG" "$CATEGORY_TOPICS" "$TOPIC_ID" "$TOPIC_POSTS"
    printf -- '- machine: %s CPUs (%s), %s RAM, %s, %s, %s\n' \
        "$(nproc)" "${cpu:-unknown CPU}" "${memory:-unknown}" "$(uname -sr)" \
        "$("$PYTHON" --version 2>&1)" "$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
    printf -- '- code: commit %s\n\n' "$commit"
    printf '%s\n' "$TABLE"
} >>"$RESULTS"

echo
echo "$TABLE"
echo
echo "Appended to $RESULTS"
