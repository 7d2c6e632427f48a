-- wrk script for bench/run.py: request headers from the environment, a count of status
-- codes, and one JSON line of results that run.py reads.
--   BENCH_ACCEPT_ENCODING  e.g. gzip (sent when set)
--   BENCH_IF_NONE_MATCH    an ETag (sent when set: the 304 revalidation case)
local encoding = os.getenv("BENCH_ACCEPT_ENCODING")
local etag = os.getenv("BENCH_IF_NONE_MATCH")
if encoding and encoding ~= "" then wrk.headers["Accept-Encoding"] = encoding end
if etag and etag ~= "" then wrk.headers["If-None-Match"] = etag end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%d": %d', status, n)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.status + e.timeout,
    table.concat(counts, ", ")))
end
