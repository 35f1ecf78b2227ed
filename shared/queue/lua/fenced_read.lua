-- fenced_read.lua: reads new entries, or claims pending ones, only while the lease holds.
-- KEYS[1]  the stream.
-- KEYS[2]  the group's lease.
-- KEYS[3]  the counters hash (claims are counted in it); may repeat KEYS[1] when unused.
-- ARGV     token, group, consumer, count, min_idle_ms ('' reads new entries), claim start id,
--          counter field for the entries claimed ('' counts nothing), and optionally
--          pending_first ('1': read new entries only when nothing is pending) and
--          renew_ttl_ms ('' or absent leaves the lease's TTL as it is).
-- Returns  {'fenced'} when the lease no longer holds the token, {'pending', entries} when
--          pending_first found pending entries (XPENDING extended form, at most count of
--          them, oldest first; nothing read), else {'ok', entries}.
-- Atomic because a holder whose lease expired between two commands must not take entries
-- ahead of the new holder, which would break the per-key order; the claim count moves with
-- the claim. The pending check and the renewal ride along to save a drain two round trips
-- per chunk.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
if ARGV[9] and ARGV[9] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[9]) end
if ARGV[5] ~= '' then
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6], 'COUNT', ARGV[4])
  if ARGV[7] ~= '' and #r[2] > 0 then redis.call('HINCRBY', KEYS[3], ARGV[7], #r[2]) end
  return {'ok', r[2]}
end
if ARGV[8] == '1' then
  local pending = redis.call('XPENDING', KEYS[1], ARGV[2], '-', '+', ARGV[4])
  if #pending > 0 then return {'pending', pending} end
end
local r = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], '>')
if not r then return {'ok', {}} end
return {'ok', r[1][2]}
