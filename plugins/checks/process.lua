-- process: a process with this name is running, read from /proc (what
-- `killall -0 haproxy` or `pidof haproxy` do in a vrrp_script, without
-- starting a program every interval).
--
-- Options: name (required; the process name as `ps -o comm` or the basename
--          of its program), min (1: how many must run).

lb.check("process", {
  defaults = { min = 1 },
  run = function(_, opt)
    if type(opt.name) ~= "string" or opt.name == "" then
      error("option name: the process name is required")
    end
    local pids, err = lb.proc.find(opt.name)
    if not pids then
      return false, err
    end
    if #pids < opt.min then
      return false, ("%s: %d running, want %d"):format(opt.name, #pids, opt.min)
    end
    return true, ("%s: %d running"):format(opt.name, #pids)
  end,
})
