-- ping: keepalived's PING_CHECK. One ICMP (IPv4, RFC 792) or ICMPv6
-- (RFC 4443) Echo Request to the real server; up when its Echo Reply
-- comes back within the timeout.
--
-- Options: timeout (seconds; lbd sets it from connect_timeout), bind_ip
--          (keepalived `bindto`), size (56: payload bytes after the ICMP
--          header), socket ("auto": an unprivileged ICMP socket where
--          ping_group_range allows it, else a raw one; "datagram", "raw").

lb.check("ping", {
  defaults = { timeout = 5, size = 56, socket = "auto" },
  run = function(target, opt)
    local res, err = lb.icmp.echo(target.ip, {
      timeout = opt.timeout,
      bind = opt.bind_ip,
      size = opt.size,
      socket = opt.socket,
    })
    if not res then
      return false, err
    end
    return true, ("echo reply from %s in %.1f ms"):format(target.ip, res.rtt * 1000)
  end,
})
