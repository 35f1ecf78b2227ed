#!lua flags=allow-oom
-- commit.lua: commits one processed chunk of a consumer group.
-- KEYS[1]   the stream.
-- KEYS[2]   the group's lease (fence): nothing is written unless it still holds the token.
-- KEYS[3]   the dead-letter stream (dead letters are added to it; a replay deletes from it).
-- KEYS[4..] every other key the payload names, referenced by its index in KEYS:
--           state hashes, output streams, the counters and dead-count hashes, the stall hash,
--           the read-ahead record (read and deleted).
-- ARGV[1]   JSON {group, token?, ids, low?, high? (smallest and largest of ids and retry ids;
--           absent when both are empty), whole? (true when ids and retry ids are all of the
--           group's pending entries, as after a fenced read of new entries, besides ahead_n
--           newer ones read ahead, the largest ahead_high; or ahead_key, the index in KEYS of
--           the read-ahead record that read_unguard.lua wrote, when that read's reply is not in
--           yet), replay?, dead = [[field, value, ...]],
--           streams = [[k, maxlen, [field, value, ...]]], hset = [[k, field, value]],
--           hdel = [[k, field]], incr = [[k, field, delta]], retry = [[id, idle_ms, attempted]]}.
-- Returns   JSON {status = 'ok', done}, {status = 'fenced'} when the lease was lost, or
--           {status = 'stale', stale = [ids]} when some id is no longer pending (or, for a
--           replay, no longer dead-lettered); nothing is written in either case.
-- Atomic because the ack, the state, the outputs, the dead letters and the counters are one
-- effect: an invocation killed at any line leaves all of it or none of it, and a holder that
-- lost its lease cannot write at all.
-- allow-oom: a full Redis must still take acks, state and the trims that free memory; without
-- the flag a script whose first write is refused would stop the queue.
local stream, dead_key = KEYS[1], KEYS[3]
local p = cjson.decode(ARGV[1])
if p.token then
  if redis.call('GET', KEYS[2]) ~= p.token then return cjson.encode({status = 'fenced'}) end
end
-- A read ahead sent before this commit and not parsed yet: its record (read_unguard.lua) says
-- what the group had pending once it had read. Consumed here; absent, or of another holder,
-- the whole-pending claim is dropped and the range check decides.
if p.ahead_key then
  local record = redis.call('GET', KEYS[p.ahead_key])
  redis.call('DEL', KEYS[p.ahead_key])
  local r = record and cjson.decode(record)
  if r and p.token and r.token == p.token then
    p.ahead_n = r.n - #p.ids - #p.retry
    p.ahead_high = r.high
  else
    p.whole = nil
  end
end
-- Pending entries from p.low to p.high (the smallest and largest of the ids and retry ids),
-- by id, read in pages of one XPENDING range each instead of one call per id. The range may
-- hold entries that are not in the commit (failed ones left for a retry, other consumers'
-- entries), so callers look ids up in the set. Reading stops after a few pages more than
-- `n` ids need, so a span crowded with others' entries costs no more than per-id checks;
-- `complete` is false then.
local function pending_between(n)
  local by_id = {}
  if n == 0 then return by_id, true end
  local start = p.low
  for _ = 1, math.floor(n / 1000) + 3 do
    local page = redis.call('XPENDING', stream, p.group, start, p.high, 1000)
    for _, e in ipairs(page) do by_id[e[1]] = e end
    if #page < 1000 or page[#page][1] == p.high then return by_id, true end
    start = '(' .. page[#page][1]
  end
  return by_id, false
end
local function pending_entry(id)
  return redis.call('XPENDING', stream, p.group, id, id, 1)[1]
end
-- For a chunk the fenced read took as the group's whole pending list, the summary form
-- (count, smallest, largest) proves every id is still pending at a fraction of a range's
-- cost: under the fence no one else reads or acks, so the list can only be what the read
-- left or what a lost write took from it, and either changes the count or an end.
local function whole_still_pending(n)
  local summary = redis.call('XPENDING', stream, p.group)
  return summary[1] == n + (p.ahead_n or 0) and summary[2] == p.low
    and summary[3] == (p.ahead_high or p.high)
end
local stale = {}
local pending = nil
if p.replay then
  for _, id in ipairs(p.ids) do
    if #redis.call('XRANGE', dead_key, id, id) == 0 then stale[#stale + 1] = id end
  end
elseif not (p.whole and p.low and whole_still_pending(#p.ids + #p.retry)) then
  local complete
  pending, complete = pending_between(#p.ids + #p.retry)
  for _, id in ipairs(p.ids) do
    if not pending[id] and (complete or not pending_entry(id)) then stale[#stale + 1] = id end
  end
end
if #stale > 0 then return cjson.encode({status = 'stale', stale = stale}) end
local done = 0
if #p.ids > 0 then
  if p.replay then
    done = redis.call('XDEL', dead_key, unpack(p.ids))
  else
    done = redis.call('XACK', stream, p.group, unpack(p.ids))
  end
end
for _, s in ipairs(p.streams) do
  redis.call('XADD', KEYS[s[1]], 'MAXLEN', '~', s[2], '*', unpack(s[3]))
end
for _, w in ipairs(p.hset) do redis.call('HSET', KEYS[w[1]], w[2], w[3]) end
for _, w in ipairs(p.hdel) do redis.call('HDEL', KEYS[w[1]], w[2]) end
for _, d in ipairs(p.dead) do redis.call('XADD', dead_key, '*', unpack(d)) end
for _, c in ipairs(p.incr) do redis.call('HINCRBY', KEYS[c[1]], c[2], c[3]) end
-- Entries left pending for a retry get the idle time that makes them claimable when their
-- retry is due (same owner). One held back behind a failed entry of its key was delivered
-- but not attempted: that delivery is given back, so the delivery count counts attempts.
for _, r in ipairs(p.retry) do
  local e = pending and pending[r[1]]
  if not e then e = pending_entry(r[1]) end
  if e then
    local count = e[4]
    if r[3] == 0 and count > 0 then count = count - 1 end
    redis.call('XCLAIM', stream, p.group, e[2], 0, r[1], 'IDLE', r[2], 'RETRYCOUNT', count,
      'JUSTID')
  end
end
return cjson.encode({status = 'ok', done = done})
