#!lua flags=allow-oom
-- lease_acquire.lua: takes a lease with a new fencing token.
-- KEYS[1]  the lease.
-- KEYS[2]  the lease's token counter.
-- ARGV     ttl_ms.
-- Returns  the new token, or nil when another holder has the lease.
-- Atomic so two callers never both see the lease free; the counter makes every token larger
-- than the last. allow-oom: a full Redis must still let a drain take its lease, since only
-- drains (acks and trimming) free memory.
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = tostring(redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
