-- fenced_read.lua: reads new entries, or claims pending ones, only while the lease holds.
-- KEYS[1]  the stream.
-- KEYS[2]  the group's lease.
-- KEYS[3]  the counters hash (claims are counted in it); may repeat KEYS[1] when unused.
-- ARGV     token, group, consumer, count, min_idle_ms ('' reads new entries), claim start id,
--          counter field for the entries claimed ('' counts nothing).
-- Returns  {'fenced'} when the lease no longer holds the token, else {'ok', entries}.
-- Atomic because a holder whose lease expired between two commands must not take entries
-- ahead of the new holder, which would break the per-key order; the claim count moves with
-- the claim.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
if ARGV[5] ~= '' then
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6], 'COUNT', ARGV[4])
  if ARGV[7] ~= '' and #r[2] > 0 then redis.call('HINCRBY', KEYS[3], ARGV[7], #r[2]) end
  return {'ok', r[2]}
end
local r = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], '>')
if not r then return {'ok', {}} end
return {'ok', r[1][2]}
