-- Token introspection (RFC 7662): the client asks about one of its own access tokens.
-- An answer counts only when it is 200 with "active": true.
package.path = "benchmarks/lua/?.lua;" .. package.path
local common = require("common")

setup = common.setup

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = common.auth.header()
  wrk.body = "token=" .. os.getenv("ACCESS_TOKEN") .. "&token_type_hint=access_token"
end

function response(status, headers, body)
  common.count(status == 200 and body:find('"active"%s*:%s*true') ~= nil, status, body)
end

function done(summary, latency, requests)
  common.done(summary, latency)
end
