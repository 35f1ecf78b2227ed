-- delete_idle_consumers.lua: removes idle consumers that hold no pending entry.
-- KEYS[1]  the stream.
-- ARGV     group, idle_ms, a consumer never removed ('' for none).
-- Returns  the names removed.
-- Atomic because XGROUP DELCONSUMER drops a consumer's pending entries: the check that it
-- holds none and the delete must see the same state.
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1]
    elseif c[i] == 'pending' then pending = c[i + 1]
    elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if pending == 0 and idle > tonumber(ARGV[2]) and name ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed[#removed + 1] = name
  end
end
return removed
