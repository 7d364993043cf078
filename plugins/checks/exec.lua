-- exec: keepalived's MISC_CHECK and vrrp_script. Runs a program (no shell)
-- and reads its exit status: 0 is up, anything else down. With `dynamic`
-- (keepalived `misc_dynamic`): 0 up, 1 down, 2..255 up with weight code - 2.
-- A program still running at the timeout is killed with its process group.
--
-- Options: argv = { "/path/prog", "arg", ... } (required), timeout (seconds),
--          dynamic (false), user (run as; default keepalived's script_user).

lb.check("exec", {
  defaults = { timeout = 10, dynamic = false },
  run = function(target, opt)
    local argv = opt.argv
    if type(argv) ~= "table" or type(argv[1]) ~= "string" then
      error("option argv: a list with the program first is required")
    end
    local res, err = lb.exec(argv, { timeout = opt.timeout, user = opt.user })
    if not res then
      return false, err
    end
    if res.timed_out then
      return false, ("%s: timed out after %s s"):format(argv[1], opt.timeout)
    end
    if res.signal then
      return false, ("%s: killed by signal %d"):format(argv[1], res.signal)
    end
    local code = res.code
    if opt.dynamic and code >= 2 and code <= 255 then
      return true, ("%s: exit %d, weight %d"):format(argv[1], code, code - 2), code - 2
    end
    return code == 0, ("%s: exit %d"):format(argv[1], code)
  end,
})
