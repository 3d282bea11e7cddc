# Shared by the benchmark scripts: a temporary data folder, the server, logging in, wrk runs
# and the machine description. Source it after setting PYTHON, WORKERS, THREADS, CONNECTIONS,
# DURATION and WARMUP; it sets DATA and BASE and stops the server on exit.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT="$(basename "$0")"

for tool in wrk curl "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "$SCRIPT: $tool is not installed" >&2; exit 1; }
done

DATA="$(mktemp -d "${TMPDIR:-/tmp}/supportboard-bench.XXXXXX")"
SERVER_PID=""

# stop_server: SIGTERM, up to 5 s for a graceful shutdown, then SIGKILL.
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        pkill -9 -P "$SERVER_PID" 2>/dev/null || true  # worker processes, if any
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# Scripts may add their own steps (a database server to stop) in EXTRA_CLEANUP.
EXTRA_CLEANUP=":"
cleanup() {
    stop_server
    eval "$EXTRA_CLEANUP"
    rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export BOARD_DATA_DIR="$DATA"
export BOARD_FLOOD_SECONDS=0
cd "$ROOT"

# copy_filled FOLDER: the database and search index of a folder filled earlier by the same
# demo command, instead of filling anew. The index is copied too, so that the server does
# not rebuild it while wrk measures.
copy_filled() {
    echo "== Copying the database and search index filled earlier in $1"
    "$PYTHON" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \
        "$1/board.db" "$DATA/board.db"
    cp -r "$1/secret_key" "$1/index" "$DATA/"
    FILL_SECONDS=0
}

# fill_demo ARGS...: `python -m board demo ARGS`, its duration in FILL_SECONDS.
fill_demo() {
    local started
    started=$(date +%s.%N)
    timeout 900 "$PYTHON" -m board demo "$@" 2>"$DATA/demo.err" \
        || { tail -n 20 "$DATA/demo.err" >&2; exit 1; }
    FILL_SECONDS="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')"
}

# start_server: run.py on a free port with WORKERS processes; waits for /healthz.
start_server() {
    local port
    port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    BASE="http://127.0.0.1:$port"
    echo "== Starting the server on $BASE ($WORKERS worker process(es))"
    "$PYTHON" run.py --port "$port" --workers "$WORKERS" >"$DATA/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do  # up to 30 s
        curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$SCRIPT: the server exited:" >&2
            tail -n 30 "$DATA/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    curl -fsS -o /dev/null "$BASE/healthz" || { echo "$SCRIPT: no /healthz after 30 s" >&2; exit 1; }
    wait_until_idle
}

# cpu_ticks: the CPU time (clock ticks) the server and its worker processes used so far.
cpu_ticks() {
    local pid total=0 ticks
    for pid in "$SERVER_PID" $(pgrep -P "$SERVER_PID" || true); do
        # Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the command's ")".
        ticks="$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
        total=$((total + ticks))
    done
    echo "$total"
}

# wait_until_idle: after a start the server works in the background for a while (the search
# index of a fresh demo, the statistics' days): measured during that, a page competes with
# it for the cores. Waits until the server used under 5 % of a core for 10 s (longer than the
# statistics task's first pause), at most 10 min.
wait_until_idle() {
    local started before after quiet=0
    started=$(date +%s)
    before="$(cpu_ticks)"
    for _ in $(seq 600); do
        sleep 1
        after="$(cpu_ticks)"
        if (( after - before <= 5 )); then quiet=$((quiet + 1)); else quiet=0; fi
        before="$after"
        (( quiet >= 10 )) && break
    done
    echo "== The server's background work settled after $(( $(date +%s) - started )) s"
}

# sql QUERY: the first row of QUERY against the bench database, fields separated by spaces.
sql() {
    "$PYTHON" -c 'import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()
print(*(row or ()))' "$DATA/board.db" "$1"
}

# log_in LOGIN PASSWORD: prints the session cookie's value.
log_in() {
    local jar="$DATA/cookies-$RANDOM.txt" token session
    token="$(curl -fsS -c "$jar" "$BASE/login" | grep -o 'name="csrf_token" value="[0-9a-f]*"' | head -n 1 | sed 's/.*value="//; s/"$//')"
    curl -fsS -b "$jar" -c "$jar" -o /dev/null \
        --data-urlencode "csrf_token=$token" --data-urlencode "login=$1" \
        --data-urlencode "password=$2" "$BASE/login"
    session="$(awk '$6 == "board_session" {print $7}' "$jar")"
    [[ -n "$session" ]] || { echo "$SCRIPT: could not log in as $1" >&2; exit 1; }
    echo "$session"
}

# wrk prints latencies as 812.00us, 3.21ms or 1.02s; the tables show milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000;
        else if (v ~ /s$/) n *= 1000
        printf "%.1f", n
    }'
}

# measure PATH LABEL WHO [HEADER]: one wrk run after a warm-up; appends a row to ROWS.
ROWS=()
RPS=()
measure() {
    local path="$1" label="$2" who="$3" header="${4:-}" status out rps p50 p99 errors
    local -a hdr=()
    [[ -n "$header" ]] && hdr=(-H "$header")
    status="$(curl -s -o "$DATA/page.html" -w '%{http_code}' "${hdr[@]}" "$BASE$path")"
    if [[ "$status" != "200" ]]; then
        echo "  $path answers HTTP $status, skipped" >&2
        ROWS+=("| \`$path\` | $label | $who | HTTP $status | – | – | – |")
        RPS+=("")
        return
    fi
    out="$(run_wrk "$BASE$path" "${hdr[@]}")"
    rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    errors="$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
        for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END {print n + 0}' <<<"$out")"
    ROWS+=("| \`$path\` | $label | $who | $rps | $p50 | $p99 | $errors |")
    RPS+=("$rps")
    printf '  %-40s %-9s %8s req/s   p50 %7s ms   p99 %7s ms   errors %s\n' \
        "$path" "$who" "$rps" "$p50" "$p99" "$errors"
}

# run_wrk URL [-H HEADER]: the warm-up, then the measured run's output.
run_wrk() {
    local url="$1"
    shift
    if [[ "$WARMUP" -gt 0 ]]; then
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$@" "$url" >/dev/null
    fi
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency "$@" "$url"
}

# measure_ceiling: the ceiling app of ../shared/ceiling (DESIGN.md) on its /db-sync page
# (20 posts from a held sqlite3 connection through a Jinja template), same wrk settings, one
# worker; adds its requests/s to CEILING_RUNS. This shared machine's figures move by
# ±30 % between runs: pages are reported as a share of the ceiling measured in the same run.
CEILING_DIR="${CEILING_DIR:-$ROOT/../shared/ceiling}"
CEILING_VENV="${CEILING_VENV:-/tmp/ceiling-venv}"
CEILING_RUNS=()
measure_ceiling() {
    local port pid out
    if [[ ! -f "$CEILING_DIR/app.py" ]]; then
        echo "$SCRIPT: no ceiling app in $CEILING_DIR; set CEILING_DIR" >&2
        return
    fi
    if [[ ! -x "$CEILING_VENV/bin/uvicorn" ]]; then  # as its run.sh installs it
        python3 -m venv "$CEILING_VENV"
        "$CEILING_VENV/bin/pip" install -q starlette uvicorn jinja2 'databases[aiosqlite]' >/dev/null
    fi
    export CEILING_DB="${CEILING_DB:-/tmp/ceiling.db}"
    [[ -f "$CEILING_DB" ]] || "$CEILING_VENV/bin/python" "$CEILING_DIR/seed.py" >/dev/null
    port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    (cd "$CEILING_DIR" && exec "$CEILING_VENV/bin/uvicorn" app:app --port "$port" --workers 1 \
        --log-level warning --no-access-log) &
    pid=$!
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/db-sync" 2>/dev/null && break
        sleep 0.1
    done
    out="$(run_wrk "http://127.0.0.1:$port/db-sync")"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    CEILING_RUNS+=("$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")")
    printf '  %-40s %-9s %8s req/s\n' "ceiling /db-sync" "-" "${CEILING_RUNS[-1]}"
}

# ceiling_rps: the median of this run's ceiling measurements, empty without any. A median:
# on this shared machine one of three runs now and then comes out at a third of the others.
ceiling_rps() {
    [[ ${#CEILING_RUNS[@]} -gt 0 ]] || return 0
    printf '%s\n' "${CEILING_RUNS[@]}" | sort -n | awk '{v[NR] = $1} END {
        if (NR % 2) printf "%.0f", v[(NR + 1) / 2]; else printf "%.0f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

results_table() {
    local ceiling index share
    ceiling="$(ceiling_rps)"
    if [[ -z "$ceiling" ]]; then
        printf '| URL | page | visitor | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---:|---:|---:|---:|\n'
        printf '%s\n' "${ROWS[@]}"
        return
    fi
    printf '| URL | page | visitor | requests/s | p50 ms | p99 ms | errors | share of /db-sync |\n|---|---|---|---:|---:|---:|---:|---:|\n'
    for index in "${!ROWS[@]}"; do
        share="–"
        [[ -n "${RPS[$index]}" ]] && share="$(awk -v a="${RPS[$index]}" -v c="$ceiling" 'BEGIN {printf "%.0f %%", 100 * a / c}')"
        printf '%s %s |\n' "${ROWS[$index]}" "$share"
    done
    printf '| `/db-sync` | ceiling app (../shared/ceiling), median of %s runs: %s | – | %s | – | – | – | 100 %% |\n' \
        "${#CEILING_RUNS[@]}" "${CEILING_RUNS[*]}" "$ceiling"
}

# machine_and_code: the "machine" and "code" lines of a RESULTS.md entry.
machine_and_code() {
    local cpu memory commit
    cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
    memory="$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || true)"
    commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        commit="$commit (uncommitted changes)"
    fi
    printf -- '- machine: %s CPUs (%s), %s RAM, %s, %s, %s\n' \
        "$(nproc)" "${cpu:-unknown CPU}" "${memory:-unknown}" "$(uname -sr)" \
        "$("$PYTHON" --version 2>&1)" "$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
    printf -- '- code: commit %s\n' "$commit"
}

results_header() {
    [[ -s "$RESULTS" ]] || printf '# Benchmark results\n\nAppended by the scripts in bench/ (see README.md); newest last.\n'
}
