-- file: keepalived's FILE_CHECK on a `track_file`. Reads the number in the
-- file (as C's strtol with base 0: "12", "-3", "0x1f"; no number or no
-- file reads as 0) and maps it with `weight` (keepalived track_file.c):
--   * weight 0: 0 is up, anything else down (`reverse`: the other way);
--   * otherwise value * weight (negated with `reverse`) is added to the
--     real server's weight, clamped to 0..2147483647; down only when the
--     product reaches -2147483648 (keepalived's IPVS_WEIGHT_FAULT).
-- keepalived watches the file with inotify; lbd reads it every delay_loop
-- (1 s for a keepalived FILE_CHECK). A value out of the 32-bit range is
-- ignored and the last good one kept, as keepalived does.
--
-- Options: path (required), weight (1), reverse (false).

local INT_MIN, INT_MAX = -2147483648, 2147483647
local last = {}

-- C strtol(s, NULL, 0): leading space, sign, 0x/0 prefixes, digits up to
-- the first other character.
local function strtol(s)
  local sign, rest = s:match("^%s*([+-]?)(.*)$")
  local digits, base = rest:match("^0[xX](%x+)"), 16
  if not digits then
    digits, base = rest:match("^(0[0-7]*)"), 8
  end
  if not digits then
    digits, base = rest:match("^(%d+)"), 10
  end
  if not digits then
    return 0
  end
  local v = 0
  for c in digits:gmatch(".") do
    v = v * base + tonumber(c, 16)
    if v > 1 << 40 then
      break -- out of range anyway; keeps the arithmetic exact
    end
  end
  return sign == "-" and -v or v
end

lb.check("file", {
  defaults = { weight = 1, reverse = false },
  run = function(target, opt)
    local path = opt.path
    if type(path) ~= "string" or path == "" then
      error("option path: the tracked file is required")
    end
    local w = math.tointeger(opt.weight)
    if not w then
      error("option weight: an integer expected")
    end
    -- keepalived reads at most 127 bytes.
    local text = lb.fs.read(path, 127)
    local value = text and strtol(text) or 0
    if value < INT_MIN or value > INT_MAX + 1 then
      value = last[path] or 0
    end
    last[path] = value
    if w == 0 then
      local failed = (value ~= 0) ~= (opt.reverse == true)
      if failed then
        return false, ("%s: %d"):format(path, value)
      end
      return true, ("%s: %d"):format(path, value)
    end
    local status = value * w * (opt.reverse == true and -1 or 1)
    if status <= INT_MIN then
      return false, ("%s: %d (x %d: fault)"):format(path, value, w)
    end
    local base = target.weight or 0
    local weight = math.max(0, math.min(INT_MAX, base + status))
    return true, ("%s: %d, weight %d"):format(path, value, weight), weight
  end,
})
