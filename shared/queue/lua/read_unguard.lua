#!lua flags=allow-oom
-- read_unguard.lua: closes a drain's read transaction opened by read_guard.
-- KEYS[1]  the stream.
-- KEYS[2]  the lease's hold record.
-- KEYS[3]  the group's read-ahead record (only with a token).
-- ARGV     group, and for a read ahead the lease's token ('' or absent for a plain read).
-- Returns  1 when a parked group position was put back, else 0. A read ahead that read
--          (the guard parked nothing) records the group's pending summary after it in KEYS[3]:
--          JSON {token, n (count), high (largest id)}, which the commit of the chunk before
--          takes instead of the read's reply, so it can go out before that reply is parsed.
-- Atomic with the guard and the read (one MULTI/EXEC), so no other client ever sees the group
-- parked at the stream's end, and the record is what the read left.
local held = redis.call('GET', KEYS[2])
if not held then
  if ARGV[2] and ARGV[2] ~= '' then
    local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
    redis.call('SET', KEYS[3], cjson.encode({token = ARGV[2], n = summary[1], high = summary[3]}),
      'PX', 60000)
  end
  return 0
end
local p = cjson.decode(held)
if p.read then
  redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], p.id, 'ENTRIESREAD', p.read)
else
  redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], p.id)
end
redis.call('DEL', KEYS[2])
return 1
