-- wrk script: one refresh_token grant per request, each with its own never-used token.
-- TOKENS_FILE lists them one per line; thread k of n takes lines k, k+n, k+2n, ...
package.path = "benchmarks/?.lua;" .. package.path
local auth = require("basic_auth")
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local tokens = {}
local next_token = 1

function init(args)
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  local i = 0
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if i % nthreads == (tid - 1) then table.insert(tokens, line) end
    i = i + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = auth.header()
end

function request()
  local token = tokens[next_token]
  next_token = next_token + 1
  if token == nil then token = "exhausted" end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

done = function(summary, latency, requests)
  io.write(string.format("rps=%.0f p50_ms=%.2f p99_ms=%.2f non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status))
end
