-- lease_release.lua: gives back a lease that still holds the caller's token.
-- KEYS[1]  the lease.
-- ARGV     token.
-- Returns  1 when released, 0 when it had been lost already.
-- Atomic so a holder never deletes the lease of the one that took it over.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
