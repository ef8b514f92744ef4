-- wrk script: one PAR push per request, client_secret_basic, a fixed valid body.
-- CLIENT_ID, CLIENT_SECRET and REDIRECT_URI come from the environment (see par_push.sh).
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

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
