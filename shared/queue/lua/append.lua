-- append.lua: appends a batch of entries with everything that must change with them.
-- KEYS[1]   the stream.
-- KEYS[2..] every other key the payload names, referenced by its index in KEYS:
--           the idempotency record, the guard hash, the latest-entry hash, the counters hash.
-- ARGV[1]   JSON {entries = [[field, value, ...], ...], maxlen?, trim_limit,
--           idem? = {k, token, fp, ttl}, guard? = {k, expected, next, state},
--           latest? = {k, items = [[entry_index, field, rest], ...]}, count? = {k, field}}.
-- Returns   JSON {status = 'ok', stream, emitted, firstId, lastId, trimmed?},
--           {status = 'lost'} when the idempotency record no longer holds the token,
--           {status = 'conflict'} when the guard's version moved.
-- Atomic because the entries, the guarded state (e.g. a simulator's walk), the latest-entry
-- index, the counter and the idempotency response must all happen or none: a retry after a
-- kill then either finds the response or starts from the untouched state.
local stream = KEYS[1]
local p = cjson.decode(ARGV[1])
if p.idem then
  if redis.call('GET', KEYS[p.idem.k]) ~= p.idem.token then return cjson.encode({status = 'lost'}) end
end
if p.guard then
  local version = redis.call('HGET', KEYS[p.guard.k], 'version') or '0'
  if version ~= p.guard.expected then return cjson.encode({status = 'conflict'}) end
end
local first, last
local ids = {}
for i, fields in ipairs(p.entries) do
  local id = redis.call('XADD', stream, '*', unpack(fields))
  ids[i] = id
  if i == 1 then first = id end
  last = id
end
if p.guard then
  redis.call('HSET', KEYS[p.guard.k], 'version', p.guard.next, 'state', p.guard.state)
end
if p.latest then
  for _, item in ipairs(p.latest.items) do
    redis.call('HSET', KEYS[p.latest.k], item[2], '{"id":"' .. ids[item[1]] .. '",' .. item[3])
  end
end
if p.count then redis.call('HINCRBY', KEYS[p.count.k], p.count.field, #p.entries) end
local result = {status = 'ok', stream = stream, emitted = #p.entries, firstId = first, lastId = last}
if p.idem then
  redis.call('SET', KEYS[p.idem.k], cjson.encode({state = 'done', fp = p.idem.fp, response = result}),
    'PX', p.idem.ttl)
end
if p.maxlen then result.trimmed = safe_trim(stream, p.maxlen, p.trim_limit) end
return cjson.encode(result)
