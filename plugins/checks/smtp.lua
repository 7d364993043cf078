-- smtp: keepalived's SMTP_CHECK. Connects to the real server (port 25 when
-- the service has none) and holds the shortest SMTP dialogue (RFC 5321):
-- the greeting must be 220, HELO `helo_name` must get 250, then QUIT and
-- its reply close the session. Each step has the whole timeout.
--
-- Replies may be multiline (RFC 5321 4.2.1: "250-..." lines continue up to
-- the "250 ..." one); a reply is its three-digit code alone or followed by
-- a space or a hyphen, anything else is a protocol error.
--
-- Options: helo_name ("smtpchecker.keepalived.org", keepalived's),
--          timeout (seconds; lbd sets it from connect_timeout), bind_ip,
--          bind_port.

-- RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF;
-- more lines than this is not an SMTP server.
local MAX_LINES = 100

local function reply(conn, timeout)
  for _ = 1, MAX_LINES do
    local line, err = conn:receive("*l", timeout)
    if not line then
      return nil, err
    end
    local code, sep = line:match("^(%d%d%d)([ -]?)")
    if not code or (sep == "" and #line > 3) then
      return nil, ("not an SMTP reply: %q"):format(line:sub(1, 80))
    end
    if sep ~= "-" then
      return tonumber(code), line
    end
  end
  return nil, "reply longer than " .. MAX_LINES .. " lines"
end

lb.check("smtp", {
  defaults = { timeout = 5, helo_name = "smtpchecker.keepalived.org" },
  run = function(target, opt)
    local port = target.port ~= 0 and target.port or 25
    local conn, err = lb.tcp.connect(target.ip, port, {
      timeout = opt.timeout,
      bind = opt.bind_ip,
      bind_port = opt.bind_port,
    })
    if not conn then
      return false, err
    end
    local function step(what, want, send)
      if send then
        local ok, serr = conn:send(send)
        if not ok then
          return nil, ("%s: send: %s"):format(what, serr)
        end
      end
      local code, line = reply(conn, opt.timeout)
      if not code then
        return nil, ("%s: %s"):format(what, line)
      end
      if want and code ~= want then
        return nil, ("%s: %q, want %d"):format(what, line:sub(1, 120), want)
      end
      return line
    end
    local banner, berr = step("greeting", 220)
    if not banner then
      conn:close()
      return false, berr
    end
    local helo, herr = step("HELO", 250, ("HELO %s\r\n"):format(opt.helo_name))
    if not helo then
      conn:close()
      return false, herr
    end
    -- keepalived waits for the QUIT reply whatever it says (RFC 5321: 221).
    local bye, qerr = step("QUIT", nil, "QUIT\r\n")
    conn:close()
    if not bye then
      return false, qerr
    end
    return true, banner:sub(1, 120)
  end,
})
