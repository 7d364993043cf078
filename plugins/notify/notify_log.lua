-- log: one line per event in lbd's log.
--
-- Options: level ("info"; or "debug", "warn", "error").

lb.notify("log", {
  defaults = { level = "info" },
  event = function(ev, opt)
    local extra = ""
    if ev.priority then
      extra = " priority " .. ev.priority
    elseif ev.vs then
      extra = " of " .. ev.vs
    end
    lb.log(opt.level, ("event %d: %s %s %s -> %s%s"):format(ev.seq, ev.kind, ev.name, ev.prev or "-", ev.state, extra))
  end,
})
