-- wrk script for the HTTP benchmark. Configured by environment variables:
--   BENCH_METHOD   GET or POST (default GET)
--   BENCH_PATHS    a file of request paths, one per line, taken in turn
--   BENCH_BODY     the request body (optional), BENCH_CONTENT_TYPE its type
--   BENCH_TOKEN    a bearer token (optional)
-- Prints one JSON object on stdout when done.
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local headers = {}
if os.getenv("BENCH_TOKEN") then
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end
if body then
  headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
end

local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  if line ~= "" then paths[#paths + 1] = line end
end

local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  threads[#threads + 1] = thread
end

local counter = 0
function request()
  counter = counter + 1
  local path = paths[((counter + (offset or 0) * 7919) % #paths) + 1]
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
