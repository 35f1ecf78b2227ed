-- Helpers prepended to the scripts that compare ids, trim or move a group (see scripts.ts).
-- They touch only keys their callers pass in, which are the callers' KEYS.
local function parse_id(id)
  local dash = string.find(id, '-', 1, true)
  if not dash then return tonumber(id), 0 end
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function id_less(a, b)
  local am, as = parse_id(a)
  local bm, bs = parse_id(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local function next_id(id)
  local ms, seq = parse_id(id)
  return string.format('%.0f-%.0f', ms, seq + 1)
end
local function field_of(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
-- A group's position: its last delivered id and its entries-read count (nil when Redis does
-- not know it), or nil when the group does not exist.
local function group_position(key, group)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    if field_of(g, 'name') == group then
      return field_of(g, 'last-delivered-id'), field_of(g, 'entries-read')
    end
  end
  return nil
end
-- Smallest id some consumer group still needs: its oldest pending entry or
-- the entry right after its last delivered one. nil when there is no group.
local function oldest_needed(key)
  local bound = nil
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local need = next_id(field_of(g, 'last-delivered-id'))
    local summary = redis.call('XPENDING', key, field_of(g, 'name'))
    if summary[1] > 0 and id_less(summary[2], need) then need = summary[2] end
    if bound == nil or id_less(need, bound) then bound = need end
  end
  return bound
end
-- Removes at most 'limit' of the oldest entries beyond 'maxlen', never one
-- that a group has not read and acknowledged (MINID below oldest_needed).
local function safe_trim(key, maxlen, limit)
  local excess = redis.call('XLEN', key) - maxlen
  if excess <= 0 then return 0 end
  if excess > limit then excess = limit end
  -- Only entries below the bound are read, so the cost is what can go.
  local bound = oldest_needed(key)
  local upper = '+'
  if bound ~= nil then upper = '(' .. bound end
  local oldest = redis.call('XRANGE', key, '-', upper, 'COUNT', excess)
  if #oldest == 0 then return 0 end
  return redis.call('XTRIM', key, 'MINID', next_id(oldest[#oldest][1]))
end
