-- Token endpoint: grant_type=refresh_token with client_secret_basic. Rotation makes a refresh
-- token single use, so each request spends its own from TOKENS_FILE (minted beforehand into
-- the server's database). An answer counts only when it is 200 with an access token.
package.path = "benchmarks/lua/?.lua;" .. package.path
local common = require("common")
local tokens, next_token = {}, 1

setup = common.setup

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = common.auth.header()
  tokens = common.lines_for_thread(os.getenv("TOKENS_FILE"))
end

function request()
  -- The tokens are URL-safe base64: nothing in them needs escaping in a form body.
  local token = tokens[next_token] or "exhausted"
  next_token = next_token + 1
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  common.count(status == 200 and body:find('"access_token"%s*:%s*"') ~= nil, status, body)
end

function done(summary, latency, requests)
  common.done(summary, latency)
end
