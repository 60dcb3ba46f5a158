-- wrk script for bench/bench_wrk.py: posts pre-built, signed and AES-encrypted WeChat callbacks.
-- WRK_FILE: one request a line, "<query>\t<body>" (the body's newlines removed; msg_signature
-- covers only the Encrypt element). Thread i of n takes lines i, i+n, … in order, so one user's
-- messages keep their order and are far apart. WRK_DELAY_MS: think time per connection (paced run).
-- done() prints one JSON line: requests, errors, latency percentiles, `success` bodies, wraps.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("WRK_THREADS") or "1")
  local file = assert(io.open(os.getenv("WRK_FILE"), "r"))
  reqs = {}
  local i = 0
  for line in file:lines() do
    if i % n == id then
      local tab = line:find("\t", 1, true)
      local query, body = line:sub(1, tab - 1), line:sub(tab + 1)
      reqs[#reqs + 1] = wrk.format("POST", "/wechat?" .. query,
        {["Content-Type"] = "text/xml"}, body)
    end
    i = i + 1
  end
  file:close()
  next_req = 1
  wraps = 0
  plain_success = 0
  bad_status = 0
  delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
end

function request()
  local r = reqs[next_req]
  next_req = next_req + 1
  if next_req > #reqs then
    next_req = 1
    wraps = wraps + 1  -- MsgIds repeat from here: the list was too short for the run
  end
  return r
end

if (tonumber(os.getenv("WRK_DELAY_MS") or "0")) > 0 then
  function delay()
    return delay_ms
  end
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif body == "success" then
    plain_success = plain_success + 1  -- no passive reply (past the deadline, or nothing to say)
  end
end

function done(summary, latency, requests)
  local wrapped, success, bad = 0, 0, 0
  for _, t in ipairs(threads) do
    wrapped = wrapped + (t:get("wraps") or 0)
    success = success + (t:get("plain_success") or 0)
    bad = bad + (t:get("bad_status") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "non_2xx": %d, "bad_status": %d, "success_bodies": %d, ' ..
    '"wraps": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status, bad,
    success, wrapped, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
