-- tcp: keepalived's TCP_CHECK. The server is up when a TCP connection to
-- it opens within the timeout; with `send`, that text is written and, with
-- `expect`, the first line of the reply must contain `expect`.
--
-- Options: timeout (seconds; lbd sets it from connect_timeout), bind_ip, bind_port,
--          send (text, e.g. "PING\r\n"), expect (substring of the first line).

lb.check("tcp", {
  defaults = { timeout = 5 },
  run = function(target, opt)
    if target.port == 0 then
      return false, "no port to check: set connect_port"
    end
    local conn, err = lb.tcp.connect(target.ip, target.port, { timeout = opt.timeout, bind = opt.bind_ip, bind_port = opt.bind_port })
    if not conn then
      return false, err
    end
    if opt.send then
      local ok, serr = conn:send(opt.send)
      if not ok then
        conn:close()
        return false, "send: " .. serr
      end
    end
    if opt.expect then
      local line, rerr = conn:receive("*l", opt.timeout)
      conn:close()
      if not line then
        return false, "receive: " .. rerr
      end
      if not string.find(line, opt.expect, 1, true) then
        return false, ("reply %q lacks %q"):format(line, opt.expect)
      end
      return true, "reply ok"
    end
    conn:close()
    return true, "connected"
  end,
})
