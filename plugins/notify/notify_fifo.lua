-- fifo: keepalived's notify_fifo. Writes one line per event to a FIFO (or
-- file) that an operator's reader consumes, in keepalived's format:
--   INSTANCE "VI_1" MASTER 100
--   GROUP "G1" BACKUP
--   RS 10.0.0.1:80 UP 10.0.0.100:80
--   VS 10.0.0.100:80 DOWN
-- A FIFO without a reader is skipped with a warning rather than waited for.
-- With `script` (keepalived notify_fifo_script) the reader is started once
-- with the FIFO path as its argument.
--
-- Options: path (required), script (optional reader program).

local started = false

local function line(ev)
  if ev.kind == "INSTANCE" then
    return ('INSTANCE "%s" %s %d\n'):format(ev.name, ev.state, ev.priority or 0)
  elseif ev.kind == "GROUP" then
    return ('GROUP "%s" %s\n'):format(ev.name, ev.state)
  elseif ev.kind == "RS" then
    return ("RS %s %s %s\n"):format(ev.name, ev.state, ev.vs or "-")
  end
  return ("%s %s %s\n"):format(ev.kind, ev.name, ev.state)
end

lb.notify("fifo", {
  event = function(ev, opt)
    if type(opt.path) ~= "string" then
      error("option path: the FIFO path is required")
    end
    if opt.script and not started then
      started = true
      lb.spawn({ opt.script, opt.path })
    end
    local ok, err = lb.fs.append(opt.path, line(ev))
    if not ok then
      lb.log("warn", ("notify fifo %s: %s"):format(opt.path, err))
    end
  end,
})
