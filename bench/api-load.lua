-- wrk script for bench/api.bench.ts: a bearer token, a fixed per-request delay so that connections × (1000 /
-- delay) approximates the target rate, and exact percentiles printed as JSON at the end.
local token = os.getenv("INDIGO_BENCH_TOKEN")
local pause = tonumber(os.getenv("INDIGO_BENCH_DELAY_MS") or "10")

request = function()
  return wrk.format("GET", nil, { ["authorization"] = "Bearer " .. token })
end

delay = function()
  return pause
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99), latency.max))
end
