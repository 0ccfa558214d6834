-- wrk done() hook: prints one JSON line as wrk's last output line, so parsers read
-- numbers wrk computed (exact percentiles from its HdrHistogram) instead of scraping
-- its rounded text table. Units: durations and latencies in microseconds.
--
-- Usage: wrk -t2 -c64 -d10s -s wrk-report.lua http://host:port/

local percentiles = { 50, 75, 90, 99, 99.9, 99.99 }

local function num(x)
  -- JSON has no NaN/Infinity; wrk reports nan for an empty histogram.
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  return string.format("%.17g", x)
end

done = function(summary, latency, requests)
  local e = summary.errors
  local p = {}
  for _, q in ipairs(percentiles) do
    p[#p + 1] = string.format('"%s":%s', tostring(q), num(latency:percentile(q)))
  end
  io.write(string.format(
    '{"edgetune_wrk":1,"duration_us":%s,"requests":%s,"bytes":%s,' ..
    '"errors":{"connect":%s,"read":%s,"write":%s,"status":%s,"timeout":%s},' ..
    '"latency_us":{"min":%s,"max":%s,"mean":%s,"stdev":%s,"percentiles":{%s}}}\n',
    num(summary.duration), num(summary.requests), num(summary.bytes),
    num(e.connect), num(e.read), num(e.write), num(e.status), num(e.timeout),
    num(latency.min), num(latency.max), num(latency.mean), num(latency.stdev),
    table.concat(p, ",")))
end
