-- PAR push: one pushed authorization request per HTTP request, 201 expected.
-- AUTH=basic: client_secret_basic with CLIENT_ID/CLIENT_SECRET, a fixed body.
-- AUTH=jwt: private_key_jwt, each request spends its own assertion from ASSERTIONS_FILE.
package.path = "benchmarks/lua/?.lua;" .. package.path
local common = require("common")
local jwt = os.getenv("AUTH") == "jwt"
local params = "response_type=code&client_id=" .. common.urlencode(os.getenv("CLIENT_ID")) ..
  "&redirect_uri=" .. common.urlencode(os.getenv("REDIRECT_URI")) ..
  "&scope=inbox.read&state=bench&code_challenge=" .. os.getenv("CODE_CHALLENGE") ..
  "&code_challenge_method=S256"
local assertions, next_assertion = {}, 1

setup = common.setup

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  if jwt then
    assertions = common.lines_for_thread(os.getenv("ASSERTIONS_FILE"))
  else
    wrk.headers["Authorization"] = common.auth.header()
    wrk.body = params
  end
end

if jwt then
  request = function()
    local assertion = assertions[next_assertion] or "exhausted"
    next_assertion = next_assertion + 1
    return wrk.format(nil, nil, nil, params ..
      "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
      "&client_assertion=" .. assertion)
  end
end

function response(status, headers, body)
  common.count(status == 201, status, body)
end

function done(summary, latency, requests)
  common.done(summary, latency)
end
