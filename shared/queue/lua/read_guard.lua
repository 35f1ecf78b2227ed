#!lua flags=allow-oom
-- read_guard.lua: opens a drain's read transaction (MULTI: this, XREADGROUP '>', read_unguard).
-- KEYS[1]  the stream.
-- KEYS[2]  the group's lease.
-- KEYS[3]  the lease's hold record, where a parked group position is kept.
-- ARGV     token, group, count, renew_ttl_ms ('' leaves the TTL as it is), and for a read
--          ahead of a chunk still in flight: its entry count, first id, last id and consumer
--          ('' or absent for a plain read).
-- Returns  {'ok'} when the lease holds and nothing is pending (for a read ahead: nothing but
--          the chunk in flight, all of it the consumer's): the XREADGROUP that follows reads
--          new entries. {'fenced'} when the lease lost the token; {'pending', entries}
--          (XPENDING extended form, at most count, oldest first) when entries wait; {'behind'}
--          when a read ahead finds more pending than its chunk. In all three the group is
--          parked at the stream's end, so the XREADGROUP reads nothing, and read_unguard puts
--          it back.
-- Atomic, and in one transaction with the read, because a holder that lost its lease must
-- not take entries ahead of the new holder, and new entries must not overtake pending ones
-- (per-key order). The read itself stays a plain XREADGROUP: its reply goes from Redis to
-- the client without passing through Lua tables, which is most of a read's cost.
-- allow-oom: a full Redis must still let drains read (they free memory), and a refused write
-- here would let the read that follows run unguarded.
local status = 'ok'
local pending = {}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  status = 'fenced'
else
  if ARGV[4] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
  if ARGV[5] and ARGV[5] ~= '' then
    -- The summary (count, smallest, largest, consumers) is enough: under the fence only this
    -- drain reads, so a list with the chunk's size and ends, held by its consumer alone, is
    -- the chunk.
    local summary = redis.call('XPENDING', KEYS[1], ARGV[2])
    local owners = summary[4]
    if not (summary[1] == tonumber(ARGV[5]) and summary[2] == ARGV[6] and summary[3] == ARGV[7]
        and owners and #owners == 1 and owners[1][1] == ARGV[8]) then
      status = 'behind'
    end
  else
    pending = redis.call('XPENDING', KEYS[1], ARGV[2], '-', '+', ARGV[3])
    if #pending > 0 then status = 'pending' end
  end
end
if status ~= 'ok' then
  local last, read = group_position(KEYS[1], ARGV[2])
  if last then
    redis.call('SET', KEYS[3], cjson.encode({id = last, read = read or false}), 'PX', 60000)
    redis.call('XGROUP', 'SETID', KEYS[1], ARGV[2], '$')
  end
end
return {status, pending}
