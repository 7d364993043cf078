-- systemd: a unit is active (what `systemctl is-active haproxy` does in a
-- vrrp_script).
--
-- Options: unit (required, e.g. "haproxy.service"), timeout (seconds).

lb.check("systemd", {
  defaults = { timeout = 5 },
  run = function(_, opt)
    if type(opt.unit) ~= "string" or opt.unit == "" then
      error("option unit: the unit name is required")
    end
    local res, err = lb.exec({ "systemctl", "is-active", "--quiet", opt.unit }, { timeout = opt.timeout })
    if not res then
      return false, err
    end
    if res.code == 0 then
      return true, opt.unit .. " is active"
    end
    return false, ("%s is not active (systemctl exit %s)"):format(opt.unit, tostring(res.code))
  end,
})
