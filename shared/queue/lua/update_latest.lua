#!lua flags=allow-oom
-- update_latest.lua: points a latest-entry index at newer entries only.
-- KEYS[1]  the index hash: field -> JSON object whose first member is "id".
-- ARGV[1]  JSON [[field, id, rest], ...], rest being the object's members after "id".
-- Returns  how many fields changed.
-- Atomic so two writers (or a late redelivery) never replace a newer id with an older one.
-- allow-oom: a sink group runs this before its ack; a full Redis must not stall the group
-- whose drain frees memory.
local key = KEYS[1]
local updated = 0
for _, item in ipairs(cjson.decode(ARGV[1])) do
  local current = redis.call('HGET', key, item[1])
  local current_id = current and string.match(current, '^{"id":"([0-9]+%-[0-9]+)"')
  if not current_id or id_less(current_id, item[2]) then
    redis.call('HSET', key, item[1], '{"id":"' .. item[2] .. '",' .. item[3])
    updated = updated + 1
  end
end
return updated
