-- lease_renew.lua: extends a lease that still holds the caller's token.
-- KEYS[1]  the lease.
-- ARGV     token, ttl_ms.
-- Returns  1 when renewed, 0 when the lease was lost.
-- Atomic so a lease taken over by another holder is never extended.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
