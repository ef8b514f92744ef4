-- Shared by the suite's wrk scripts: per-thread setup, counting good and bad answers, reading
-- single-use values from a file, and the one-line JSON summary the suite parses ("BENCH {...}").
package.path = "benchmarks/?.lua;" .. package.path
local M = {}
M.auth = require("basic_auth")

local threads = {}
M.threads = threads
local counter = 0

-- Per thread state (each wrk thread runs its own copy of the script).
ok, bad, bad_sample = 0, 0, nil

function M.setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function M.count(good, status, body)
  if good then
    ok = ok + 1
  else
    bad = bad + 1
    if bad_sample == nil then bad_sample = tostring(status) .. " " .. string.sub(body or "", 1, 300) end
  end
end

function M.urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- Thread k of n takes lines k, k+n, k+2n, ... so that no value is sent twice.
function M.lines_for_thread(path)
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  local mine, i = {}, 0
  for line in io.lines(path) do
    if i % nthreads == (tid - 1) then table.insert(mine, line) end
    i = i + 1
  end
  return mine
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

-- extra: fields that override or add to the summary (the flow script reports its own
-- per-flow latency instead of wrk's per-request one).
function M.done(summary, latency, extra)
  local total_ok, total_bad, sample = 0, 0, nil
  for _, thread in ipairs(threads) do
    total_ok = total_ok + (thread:get("ok") or 0)
    total_bad = total_bad + (thread:get("bad") or 0)
    sample = sample or thread:get("bad_sample")
  end
  local e = summary.errors
  local fields = {
    seconds = summary.duration / 1e6,
    requests = summary.requests,
    ops = total_ok,
    bad = total_bad,
    socket_errors = e.connect + e.read + e.write + e.timeout,
    p50_ms = latency:percentile(50) / 1000,
    p99_ms = latency:percentile(99) / 1000,
  }
  for k, v in pairs(extra or {}) do fields[k] = v end
  local parts = {}
  for k, v in pairs(fields) do table.insert(parts, json_string(k) .. ":" .. string.format("%.10g", v)) end
  if sample then table.insert(parts, '"bad_sample":' .. json_string(sample)) end
  io.write("BENCH {" .. table.concat(parts, ",") .. "}\n")
end

return M
