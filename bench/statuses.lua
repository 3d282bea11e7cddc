-- The end of the wrk scripts that bench/mixed.sh writes: it defines `requests`, a list of
-- {path, session cookie or ""}, sent in turn; this part counts the answers by status and
-- prints them with the latency percentiles (microseconds) for the script to read.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
    position = math.random(#requests)
end

function request()
    position = position % #requests + 1
    local entry = requests[position]
    local headers = {}
    if entry[2] ~= "" then
        headers["Cookie"] = "board_session=" .. entry[2]
    end
    return wrk.format("GET", entry[1], headers)
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, thread in ipairs(threads) do
        for status, count in pairs(thread:get("statuses")) do
            total[status] = (total[status] or 0) + count
        end
    end
    for status, count in pairs(total) do
        io.write(string.format("status %d %d\n", status, count))
    end
    io.write(string.format("percentiles-us %d %d %d\n",
        latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
