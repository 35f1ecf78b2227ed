#!lua flags=allow-oom
-- read_unguard.lua: closes a drain's read transaction opened by read_guard.
-- KEYS[1]  the stream.
-- KEYS[2]  the lease's hold record.
-- ARGV     group.
-- Returns  1 when a parked group position was put back, else 0.
-- Atomic with the guard and the read (one MULTI/EXEC), so no other client ever sees the group
-- parked at the stream's end.
local held = redis.call('GET', KEYS[2])
if not held then return 0 end
local p = cjson.decode(held)
if p.read then
  redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], p.id, 'ENTRIESREAD', p.read)
else
  redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], p.id)
end
redis.call('DEL', KEYS[2])
return 1
