-- webhook: POSTs each event as JSON to an HTTP endpoint.
--   { "seq": 12, "time": 1764000000.5, "kind": "INSTANCE", "name": "VI_1",
--     "state": "MASTER", "prev": "BACKUP", "priority": 100 }
--
-- Options: url (required): "http://IP:PORT/path" or "unix:/run/x.sock:/path"
--          (an address, not a name: lbd resolves nothing behind your back),
--          timeout (5 s), headers (table of extra headers).

local function target(url)
  local sock, path = url:match("^unix:([^:]+):(/.*)$")
  if sock then
    return { unix = sock, path = path }
  end
  local host, rest = url:match("^http://([^/]+)(.*)$")
  if not host then
    error("option url: http://IP:PORT/path or unix:/socket:/path expected, got " .. url)
  end
  local ip, port = host:match("^%[([%x:]+)%]:?(%d*)$")
  if not ip then
    ip, port = host:match("^([%d%.]+):?(%d*)$")
  end
  if not ip then
    error("option url: the host must be an IP address, got " .. host)
  end
  return { ip = ip, port = tonumber(port) or 80, path = rest ~= "" and rest or "/" }
end

lb.notify("webhook", {
  defaults = { timeout = 5 },
  event = function(ev, opt)
    if type(opt.url) ~= "string" then
      error("option url is required")
    end
    local req = target(opt.url)
    req.method = "POST"
    req.timeout = opt.timeout
    req.connect_timeout = opt.timeout
    req.headers = { ["content-type"] = "application/json" }
    for k, v in pairs(opt.headers or {}) do
      req.headers[k] = v
    end
    req.body = lb.json.encode(ev)
    local res, err = lb.http.request(req)
    if not res then
      lb.log("warn", ("webhook %s: %s"):format(opt.url, err))
    elseif res.status < 200 or res.status > 299 then
      lb.log("warn", ("webhook %s: status %d"):format(opt.url, res.status))
    end
  end,
})
