-- Resource server: GET with a DPoP-bound JWT access token and a fresh DPoP proof per request
-- (proofs are single use: each comes from PROOFS_FILE, minted for this URL and token).
package.path = "benchmarks/lua/?.lua;" .. package.path
local common = require("common")
local authorization = "DPoP " .. os.getenv("ACCESS_TOKEN")
local proofs, next_proof = {}, 1

setup = common.setup

function init(args)
  proofs = common.lines_for_thread(os.getenv("PROOFS_FILE"))
end

function request()
  local proof = proofs[next_proof] or "exhausted"
  next_proof = next_proof + 1
  return wrk.format("GET", nil, { ["Authorization"] = authorization, ["DPoP"] = proof })
end

function response(status, headers, body)
  common.count(status == 200, status, body)
end

function done(summary, latency, requests)
  common.done(summary, latency)
end
