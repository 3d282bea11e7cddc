#!/usr/bin/env bash
# A worker's memory while it rebuilds the search index at its start (a new node, an index
# lost or from an older version): copies the database of a folder filled earlier (FILLED,
# e.g. by bench/logged_in.sh's demo command) without its index, starts one worker and
# samples its resident memory every 2 s until the new index is in place. Prints the peak,
# the memory after and the time, and appends them to bench/RESULTS.md.
#
# Settings (environment): FILLED (required), PYTHON, RESULTS.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
WORKERS=1
: "${FILLED:?FILLED=<a folder filled by python -m board demo>}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

echo "== Copying the database of $FILLED, without its search index"
"$PYTHON" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \
    "$FILLED/board.db" "$DATA/board.db"
cp "$FILLED/secret_key" "$DATA/"
DOCUMENTS="$(sql "SELECT (SELECT count(*) FROM topics) + (SELECT count(*) FROM conversations)")"

started=$(date +%s)
# Not start_server: it waits for the background work to settle, which is what is measured.
port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$PYTHON" run.py --port "$port" --workers 1 >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
rss() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status"; }
PEAK=0
for _ in $(seq 900); do  # up to 30 min
    sleep 2
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$DATA/server.log" >&2; exit 1; }
    now="$(rss)"
    (( now > PEAK )) && PEAK=$now
    [[ -d "$DATA/index" && ! -d "$DATA/index.new" ]] && break
done
SECONDS_TAKEN=$(( $(date +%s) - started ))
sleep 5
AFTER="$(rss)"
echo "  rebuilt $DOCUMENTS documents in $SECONDS_TAKEN s; worker RSS peak $PEAK MiB, after $AFTER MiB"

MACHINE="$(machine_and_code)"
{
    results_header
    printf '\n## Search index rebuilt by a starting worker, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `FILLED=<folder filled by python -m board demo> bench/rebuild_memory.sh`\n'
    printf -- '- server: `python run.py --workers 1`, SQLite, no requests; %s topics and conversations to index\n' "$DOCUMENTS"
    printf '%s\n\n' "$MACHINE"
    printf '| rebuilt in | worker RSS, peak | worker RSS, 5 s after |\n|---:|---:|---:|\n'
    printf '| %s s | %s MiB | %s MiB |\n' "$SECONDS_TAKEN" "$PEAK" "$AFTER"
} >>"$RESULTS"
echo "Appended to $RESULTS"
