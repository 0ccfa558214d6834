-- Constant-rate load with wrk (Debian ships no wrk2 or fortio): each wrk thread owns
-- exactly one connection (run with -t N -c N) and sends on a fixed schedule,
-- t0 + k/rate. Latency is measured from the *intended* send time, so a stalled
-- server is charged for the requests it delayed (the coordinated-omission
-- correction wrk2 makes). It is still one outstanding request per connection:
-- if the server is slower than the schedule the connection falls behind and
-- sends back-to-back rather than opening more connections, so it is "closed loop
-- with schedule-corrected latency", not a true open-loop generator.
--
-- Usage: wrk -tN -cN -d10s -s wrk-paced.lua http://host:port/ -- <requests/s per connection>

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } edgetune_timespec;
  int clock_gettime(int clk_id, edgetune_timespec *tp);
]]
local ts = ffi.new("edgetune_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end

local interval_us, t0, k, intended, sent_at
samples = {}  -- global: done() reads it from every thread with thread:get()
behind = 0    -- requests sent later than their slot by more than one interval

init = function(args)
  local rate = tonumber(args[1])
  if not rate or rate <= 0 then error("wrk-paced.lua: pass the rate per connection after --") end
  rate_per_connection = rate -- global, for done()
  interval_us = 1e6 / rate
  k = 0
end

delay = function()
  if not t0 then t0 = now_us() end
  local wait_ms = math.floor((t0 + k * interval_us - now_us()) / 1000)
  return wait_ms > 0 and wait_ms or 0
end

request = function()
  if not t0 then t0 = now_us() end
  intended = t0 + k * interval_us
  k = k + 1
  sent_at = now_us()
  if sent_at - intended > interval_us then behind = behind + 1 end
  return wrk.request()
end

response = function(status, headers, body)
  if not sent_at then return end
  -- delay() has millisecond granularity and may release a request early; never
  -- measure from a point before the request actually left.
  local from = intended < sent_at and intended or sent_at
  samples[#samples + 1] = now_us() - from
end

local function num(x)
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  return string.format("%.17g", x)
end

done = function(summary, latency, requests)
  local all, late = {}, 0
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("samples") or {}) do all[#all + 1] = v end
    late = late + (t:get("behind") or 0)
  end
  table.sort(all)
  local sum, sq = 0, 0
  for _, v in ipairs(all) do sum = sum + v end
  local mean = #all > 0 and sum / #all or 0 / 0
  for _, v in ipairs(all) do sq = sq + (v - mean) ^ 2 end
  local stdev = #all > 1 and math.sqrt(sq / (#all - 1)) or 0 / 0
  local rate = threads[1] and threads[1]:get("rate_per_connection") or 0 / 0
  local function pct(q)
    if #all == 0 then return 0 / 0 end
    return all[math.max(1, math.ceil(q / 100 * #all))]
  end
  local p = {}
  for _, q in ipairs({ 50, 75, 90, 99, 99.9, 99.99 }) do
    p[#p + 1] = string.format('"%s":%s', tostring(q), num(pct(q)))
  end
  local e = summary.errors
  io.write(string.format(
    '{"edgetune_wrk":1,"duration_us":%s,"requests":%s,"bytes":%s,' ..
    '"errors":{"connect":%s,"read":%s,"write":%s,"status":%s,"timeout":%s},' ..
    '"latency_us":{"min":%s,"max":%s,"mean":%s,"stdev":%s,"percentiles":{%s}},' ..
    '"schedule":{"rate_per_connection":%s,"connections":%d,"samples":%d,"behind":%d}}\n',
    num(summary.duration), num(summary.requests), num(summary.bytes),
    num(e.connect), num(e.read), num(e.write), num(e.status), num(e.timeout),
    num(all[1] or 0 / 0), num(all[#all] or 0 / 0), num(mean), num(stdev),
    table.concat(p, ","), num(rate), #threads, #all, late))
end
