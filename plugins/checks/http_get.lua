-- http_get and https_get: keepalived's HTTP_GET and SSL_GET.
--
-- Every configured url must pass: the status is in its ranges (default
-- 200-299), and when given, the MD5 of the body equals `digest` and the body
-- matches `regex` (or must not, with `regex_no_match`).
--
-- Options:
--   urls           list of { path = "/", status = {{200, 299}}, digest = "hex",
--                  regex = "...", regex_no_match = false }  (default: one url "/")
--   host           Host header (keepalived `virtualhost`; default the target ip)
--   timeout        seconds, for connect and for the whole request (set by lbd
--                  from `connect_timeout`)
--   bind_ip        source address (keepalived `bindto`)
--   keepalive      true: keep the connection open and send the next check on
--                  it (HTTP keep-alive), a new one only when the server closed
--                  it; far less work per check on both sides, but a server
--                  that stops accepting new connections goes unnoticed while
--                  the kept one lives. Default false: a connection per check,
--                  as keepalived.
--   https_get only:
--   sni            server name sent in the TLS handshake (default `host`)
--   enable_sni     false sends none (keepalived default: SNI only when enabled)
--   verify         check the certificate chain (default false, as keepalived)
--   ca_file        CA bundle used with verify
--
-- Only the regex and digest urls read the body, up to 4 MiB.

local MAX_BODY = 4 << 20

local function ranges_text(ranges)
  local parts = {}
  for _, r in ipairs(ranges) do
    local lo, hi = r[1], r[2] or r[1]
    parts[#parts + 1] = lo == hi and tostring(lo) or (lo .. "-" .. hi)
  end
  return table.concat(parts, ",")
end

local function in_ranges(code, ranges)
  for _, r in ipairs(ranges) do
    local lo, hi = r[1], r[2] or r[1]
    if type(lo) ~= "number" or type(hi) ~= "number" then
      error("option status: ranges must be {low, high} numbers")
    end
    if code >= lo and code <= hi then
      return true
    end
  end
  return false
end

local function check_url(target, opt, u, tls)
  if type(u) ~= "table" then
    error("option urls: each url must be a table")
  end
  local path = u.path or "/"
  local req = {
    method = "GET",
    ip = target.ip,
    port = target.port,
    path = path,
    host = opt.host,
    timeout = opt.timeout,
    connect_timeout = opt.timeout,
    bind = opt.bind_ip,
    max_body = (u.digest or u.regex) and MAX_BODY or 0,
    keepalive = opt.keepalive == true,
  }
  if tls then
    req.tls = true
    req.verify = opt.verify == true
    req.ca_file = opt.ca_file
    if opt.enable_sni ~= false then
      req.sni = opt.sni or opt.host
    end
  end
  local res, err = lb.http.request(req)
  if not res then
    return false, ("GET %s: %s"):format(path, err)
  end
  local ranges = u.status or { { 200, 299 } }
  if not in_ranges(res.status, ranges) then
    return false, ("GET %s: status %d not in %s"):format(path, res.status, ranges_text(ranges))
  end
  if u.digest and lb.md5(res.body) ~= string.lower(u.digest) then
    return false, ("GET %s: body digest %s, want %s"):format(path, lb.md5(res.body), u.digest)
  end
  if u.regex then
    local found = lb.regex.find(u.regex, res.body)
    if found == (u.regex_no_match == true) then
      return false, ("GET %s: body %s /%s/"):format(path, found and "matches" or "does not match", u.regex)
    end
  end
  return true, ("GET %s: status %d"):format(path, res.status)
end

local function run(tls)
  return function(target, opt)
    if target.port == 0 then
      return false, "no port to check: set connect_port"
    end
    local urls = opt.urls or { { path = "/" } }
    if type(urls) ~= "table" then
      error("option urls: a list of urls expected")
    end
    local last = "no url"
    for _, u in ipairs(urls) do
      local ok, msg = check_url(target, opt, u, tls)
      if not ok then
        return false, msg
      end
      last = msg
    end
    return true, last
  end
end

lb.check("http_get", { defaults = { timeout = 5 }, run = run(false) })
lb.check("https_get", { defaults = { timeout = 5, verify = false }, run = run(true) })
