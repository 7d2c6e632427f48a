-- wrk script for bench/run.py: request headers from the environment, and one JSON line of
-- results that run.py reads.
--   BENCH_ACCEPT_ENCODING  e.g. gzip (sent when set)
--   BENCH_IF_NONE_MATCH    an ETag (sent when set: the 304 revalidation case)
-- No response() callback: with one, wrk hands every response to Lua, which costs wrk's
-- own core time (about 9% fewer nginx requests/s in one round here). Answers are checked
-- by run.py instead: before the run (status, headers, bytes), and from this run's count
-- of non-2xx/3xx statuses and its bytes per response.
local encoding = os.getenv("BENCH_ACCEPT_ENCODING")
local etag = os.getenv("BENCH_IF_NONE_MATCH")
if encoding and encoding ~= "" then wrk.headers["Accept-Encoding"] = encoding end
if etag and etag ~= "" then wrk.headers["If-None-Match"] = etag end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "errors": %d, "bad_statuses": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
