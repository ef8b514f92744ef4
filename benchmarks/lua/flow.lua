-- The whole authorization flow per second, as a client and a signed-in person's browser drive
-- it: push, open the authorization URL, follow the redirects to the consent page, approve,
-- exchange the code at the token endpoint. One connection per wrk thread (run with -t N -c N),
-- so that each thread's Lua state is one browser stepping through one flow at a time.
--
-- COOKIES_FILE: one line per thread, the Cookie header of a browser that already signed in.
-- The browser keeps the cookies it is sent, but wrk shows only the last Set-Cookie of a
-- response: enough for Grantline (none during the flow) and for oidc-provider's session
-- cookie, which it renews last in every response and replaces on each resume.
-- INTERACTION_COOKIES=1 (oidc-provider): its interaction cookies, set in the same response
-- as the session cookie, hold the interaction's uid, so they are rebuilt from the redirect.
-- Latency is per flow (push to token), measured here with a monotonic clock.
package.path = "benchmarks/lua/?.lua;" .. package.path
local common = require("common")
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local env = os.getenv
local par_path, auth_path, token_path = env("PAR_PATH"), env("AUTH_PATH"), env("TOKEN_PATH")
local client_id, redirect_uri = env("CLIENT_ID"), env("REDIRECT_URI")
local derive_cookies = env("INTERACTION_COOKIES") == "1"
local push_body = "response_type=code&client_id=" .. common.urlencode(client_id) ..
  "&redirect_uri=" .. common.urlencode(redirect_uri) ..
  "&scope=inbox.read&state=bench&code_challenge=" .. env("CODE_CHALLENGE") ..
  "&code_challenge_method=S256"
local token_tail = "&redirect_uri=" .. common.urlencode(redirect_uri) ..
  "&code_verifier=" .. env("CODE_VERIFIER")

local basic
local jar, jar_order = {}, {}
local step, pending, started
durations = {}

local function set_cookie(name, value)
  if jar[name] == nil then table.insert(jar_order, name) end
  jar[name] = value
end

local function cookie_header()
  local parts = {}
  for _, name in ipairs(jar_order) do
    if jar[name] ~= "" then table.insert(parts, name .. "=" .. jar[name]) end
  end
  return table.concat(parts, "; ")
end

local function keep_cookie(headers)
  local header = headers["Set-Cookie"] or headers["set-cookie"]
  if header == nil then return end
  local name, value = header:match("^%s*([^=;%s]+)=([^;]*)")
  if name == nil then return end
  if header:lower():find("expires=thu, 01 jan 1970", 1, true) then value = "" end
  set_cookie(name, value)
end

setup = common.setup

local function form_headers(auth)
  return { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = auth,
           ["Cookie"] = auth == nil and cookie_header() or nil }
end

local function push()
  step, started = "push", now_ms()
  return wrk.format("POST", par_path, form_headers(basic), push_body)
end

local function get(path)
  step = "page"
  return wrk.format("GET", path, { ["Cookie"] = cookie_header() })
end

local function follow(location)
  if location == nil then return nil end
  if location:sub(1, #redirect_uri) == redirect_uri then
    local code = location:match("[?&]code=([^&#]+)")
    if code == nil then return nil end
    step = "token"
    return wrk.format("POST", token_path, form_headers(basic),
      "grant_type=authorization_code&code=" .. code .. token_tail)
  end
  local path = location:gsub("^https?://[^/]+", "")
  local uid = derive_cookies and path:match("^/interaction/([^/?]+)")
  if uid then
    set_cookie("_interaction", uid)
    set_cookie("_interaction_resume", uid)
  end
  return get(path)
end

local function submit(body)
  local action = body:match('<form[^>]-action="([^"]*)"')
  if action == nil then return nil end
  local fields = {}
  for name, value in body:gmatch('<input type="hidden" name="([^"]*)" value="([^"]*)"') do
    table.insert(fields, common.urlencode(name) .. "=" .. common.urlencode(value))
  end
  table.insert(fields, "decision=approve")
  step = "decide"
  return wrk.format("POST", action, form_headers(nil), table.concat(fields, "&"))
end

function init(args)
  basic = common.auth.header()
  for name, value in common.lines_for_thread(env("COOKIES_FILE"))[1]:gmatch("([^=;%s]+)=([^;]*)") do
    set_cookie(name, value)
  end
  pending = push()
end

function request()
  local r = pending
  pending = nil
  return r or push()
end

function response(status, headers, body)
  keep_cookie(headers)
  local location = headers["Location"] or headers["location"]
  local next_request
  if step == "push" and status == 201 then
    local request_uri = body:match('"request_uri"%s*:%s*"([^"]+)"')
    if request_uri then
      next_request = get(auth_path .. "?client_id=" .. common.urlencode(client_id) ..
        "&request_uri=" .. common.urlencode(request_uri))
    end
  elseif (step == "page" or step == "decide") and (status == 302 or status == 303) then
    next_request = follow(location)
  elseif step == "page" and status == 200 then
    next_request = submit(body)
  elseif step == "token" and status == 200 and body:find('"access_token"') then
    table.insert(durations, now_ms() - started)
    common.count(true)
    pending = push()
    return
  end
  if next_request == nil then
    common.count(false, step .. " " .. status, body)
    pending = push()
  else
    pending = next_request
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p / 100))]
end

function done(summary, latency, requests)
  local all = {}
  for _, thread in ipairs(common.threads) do
    for _, ms in ipairs(thread:get("durations") or {}) do table.insert(all, ms) end
  end
  table.sort(all)
  common.done(summary, latency, {
    p50_ms = percentile(all, 50),
    p99_ms = percentile(all, 99),
    request_p50_ms = latency:percentile(50) / 1000,
    request_p99_ms = latency:percentile(99) / 1000,
  })
end
