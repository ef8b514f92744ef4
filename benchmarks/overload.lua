-- wrk script: PAR pushes far above capacity, counting every status code across threads.
-- CLIENT_ID, CLIENT_SECRET and REDIRECT_URI come from the environment (see overload.sh).
package.path = "benchmarks/?.lua;" .. package.path
local auth = require("basic_auth")
local redirect_uri = os.getenv("REDIRECT_URI")

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = auth.header()
wrk.body = "response_type=code&redirect_uri=" .. urlencode(redirect_uri) ..
  "&scope=inbox.read&state=bench&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" ..
  "&code_challenge_method=S256"

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

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do table.insert(parts, status .. "=" .. n) end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format(
    "requests=%d rps=%.0f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f statuses=%s " ..
    "timeouts=%d connect_errors=%d read_errors=%d write_errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    table.concat(parts, ","), e.timeout, e.connect, e.read, e.write))
end
