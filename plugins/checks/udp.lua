-- udp: keepalived's UDP_CHECK. Sends one datagram to the real server and
-- reads what comes back within the timeout:
--   * an ICMP error (port, host or network unreachable) is down;
--   * silence is up, unless `require_reply` is set (a UDP service need not
--     answer: the absence of "port unreachable" is what is checked);
--   * a reply must be min_reply_length..max_reply_length bytes long and,
--     with `reply`, match it over the shorter of the two lengths, where an
--     `x` nibble matches anything (keepalived's require_reply HEX_STR).
--
-- Options: payload (hex; default keepalived's 32-byte filler text),
--          require_reply (false), reply (hex with x wildcards; implies
--          require_reply), min_reply_length (0), max_reply_length (255),
--          timeout (seconds), bind_ip, bind_port.

local FILLER = string.rep("keepalived check - ", 2):sub(1, 32)

-- keepalived's read_hex_str: spaces separate groups; a group is read two
-- digits at a time and an odd last digit is a byte of its own
-- ("Ab12f 3" = AB 12 0F 03). Returns bytes and a mask of ignored bits.
local function hex(s, what, wildcards)
  if type(s) ~= "string" then
    error(("option %s: a hex string expected"):format(what))
  end
  local data, mask = {}, {}
  for group in s:gmatch("%S+") do
    local i = 1
    while i <= #group do
      local pair = group:sub(i, i + 1)
      local v, m = 0, 0
      for c in pair:gmatch(".") do
        local d = tonumber(c, 16)
        local mc = 0
        if not d then
          if wildcards and (c == "x" or c == "X") then
            d, mc = 0, 0xf
          else
            error(("option %s: %q is not a hex digit"):format(what, c))
          end
        end
        v, m = v * 16 + d, m * 16 + mc
      end
      data[#data + 1], mask[#mask + 1] = v, m
      i = i + 2
    end
  end
  if #data == 0 then
    error(("option %s: empty hex string"):format(what))
  end
  return data, mask
end

local function to_bytes(t)
  local parts = {}
  for i = 1, #t, 4096 do
    parts[#parts + 1] = string.char(table.unpack(t, i, math.min(i + 4095, #t)))
  end
  return table.concat(parts)
end

lb.check("udp", {
  defaults = { timeout = 5, min_reply_length = 0, max_reply_length = 255, require_reply = false },
  run = function(target, opt)
    if target.port == 0 then
      return false, "no port to check: set connect_port"
    end
    local payload = FILLER
    if opt.payload ~= nil then
      payload = to_bytes((hex(opt.payload, "payload", false)))
    end
    local want, mask
    if opt.reply ~= nil then
      want, mask = hex(opt.reply, "reply", true)
    end
    local need = opt.require_reply == true or want ~= nil
    local min, max = opt.min_reply_length, opt.max_reply_length
    local res, err = lb.udp.request(target.ip, target.port, payload, {
      timeout = opt.timeout,
      bind = opt.bind_ip,
      bind_port = opt.bind_port,
      max_reply = max,
    })
    if not res then
      return false, err
    end
    if res.timed_out then
      if need then
        return false, ("no reply within %s s"):format(opt.timeout)
      end
      return true, "no ICMP error within the timeout"
    end
    local r = res.reply
    if not need then
      return true, ("reply of %d bytes"):format(#r)
    end
    if res.truncated or #r < min or #r > max then
      return false, ("reply length %s%d not in %d..%d"):format(res.truncated and ">" or "", #r, min, max)
    end
    if want then
      for i = 1, math.min(#r, #want) do
        local b = r:byte(i)
        local keep = ~mask[i] & 0xff
        if (b & keep) ~= (want[i] & keep) then
          return false, ("reply byte %d is %02x, want %02x"):format(i, b, want[i])
        end
      end
    end
    return true, ("reply of %d bytes matches"):format(#r)
  end,
})
