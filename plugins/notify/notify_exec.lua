-- exec: keepalived's notify scripts. Runs `script` (split into words as
-- keepalived does: blanks separate, quotes group, no shell) or `argv`, and
-- waits for it: the host hands events one at a time in the order they
-- happened, so a script sees MASTER after the BACKUP that preceded it.
--
-- With `args` (keepalived's `notify`), the event is appended the way
-- keepalived passes it: INSTANCE|GROUP NAME STATE [PRIORITY]; for real
-- servers and quorum: RS|VS NAME STATE [VS]. notify_master & co. get none.
--
-- Options: script or argv (required), args (false), timeout (30 s), user.

local function words(s)
  local out, cur, quote, i, have = {}, {}, nil, 1, false
  while i <= #s do
    local c = s:sub(i, i)
    if quote then
      if c == quote then
        quote = nil
      elseif c == "\\" and quote == '"' and i < #s then
        i = i + 1
        cur[#cur + 1] = s:sub(i, i)
      else
        cur[#cur + 1] = c
      end
    elseif c == '"' or c == "'" then
      quote, have = c, true
    elseif c == "\\" and i < #s then
      i = i + 1
      cur[#cur + 1] = s:sub(i, i)
      have = true
    elseif c:match("%s") then
      if have or #cur > 0 then
        out[#out + 1] = table.concat(cur)
        cur, have = {}, false
      end
    else
      cur[#cur + 1] = c
    end
    i = i + 1
  end
  if quote then
    error("option script: unterminated quote in " .. s)
  end
  if have or #cur > 0 then
    out[#out + 1] = table.concat(cur)
  end
  return out
end

lb.notify("exec", {
  defaults = { args = false, timeout = 30 },
  event = function(ev, opt)
    local argv
    if type(opt.argv) == "table" then
      argv = { table.unpack(opt.argv) }
    elseif type(opt.script) == "string" then
      argv = words(opt.script)
    end
    if not argv or not argv[1] then
      error("option script or argv is required")
    end
    if opt.args then
      argv[#argv + 1] = ev.kind
      argv[#argv + 1] = ev.name
      argv[#argv + 1] = ev.state
      if ev.kind == "INSTANCE" and ev.priority then
        argv[#argv + 1] = tostring(ev.priority)
      elseif ev.vs then
        argv[#argv + 1] = ev.vs
      end
    end
    local res, err = lb.exec(argv, { timeout = opt.timeout, user = opt.user })
    if not res then
      lb.log("warn", ("notify %s: %s"):format(argv[1], err))
    elseif res.timed_out then
      lb.log("warn", ("notify %s: killed after %s s"):format(argv[1], opt.timeout))
    elseif res.code ~= 0 then
      lb.log("warn", ("notify %s %s %s: exit %s"):format(argv[1], ev.name, ev.state, tostring(res.code or res.signal)))
    end
  end,
})
