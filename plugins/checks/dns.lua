-- dns: keepalived's DNS_CHECK. Asks the server (the real server's address,
-- port 53 unless the service says otherwise) for `name` of `type`; up when
-- the answer is NOERROR with at least one record of that type.
--
-- Options: type ("SOA"), name ("."), timeout (seconds), tcp (false).

lb.check("dns", {
  defaults = { type = "SOA", name = ".", timeout = 5, tcp = false },
  run = function(target, opt)
    local qtype = string.upper(tostring(opt.type))
    local port = target.port ~= 0 and target.port or 53
    local res, err = lb.dns.query(target.ip, opt.name, qtype, { port = port, timeout = opt.timeout, tcp = opt.tcp })
    if not res then
      return false, err
    end
    if res.rcode ~= "NOERROR" then
      return false, ("%s %s: %s"):format(opt.name, qtype, res.rcode)
    end
    for _, a in ipairs(res.answers) do
      if a.type == qtype then
        return true, ("%s %s: %s"):format(opt.name, qtype, a.data)
      end
    end
    return false, ("%s %s: no %s record in the answer"):format(opt.name, qtype, qtype)
  end,
})
