-- wrk script of bench/run: GET / with an X-Session-ID header, and a report
-- line with the percentiles wrk's --latency table leaves out (p99.9).
--
--   SESSIONS=1   every request carries X-Session-ID: bench (static request)
--   SESSIONS=100 request k carries X-Session-ID: s-<k mod 100>; each wrk
--                thread starts at its own offset, so every session is in use
--
-- The last line wrk prints is "BENCH_JSON {...}": requests, errors and
-- latency percentiles in microseconds.
local sessions = tonumber(os.getenv("SESSIONS") or "1")

if sessions <= 1 then
  wrk.headers["X-Session-ID"] = "bench"
else
  local requests = {}
  local next_index = 0
  local threads = 0
  function setup(thread)
    thread:set("offset", threads * 37)
    threads = threads + 1
  end
  function init(args)
    for i = 0, sessions - 1 do
      requests[i] = wrk.format("GET", "/", { ["X-Session-ID"] = "s-" .. i })
    end
    next_index = (offset or 0) % sessions
  end
  function request()
    next_index = (next_index + 1) % sessions
    return requests[next_index]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.mean))
end
