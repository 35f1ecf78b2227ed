#!lua flags=allow-oom
-- unread.lua: puts a chunk a drain read ahead, and will not run, back as never read.
-- KEYS[1]  the stream.
-- KEYS[2]  the group's lease (fence).
-- ARGV     token, group, the group's position before the read (the last id of the chunk
--          before it), then the chunk's ids in order.
-- Returns  1 when the chunk was put back: its ids left the pending list and the group's
--          position (and entries-read) moved back to before them, so the next read takes them
--          as new entries; 0, changing nothing, when the lease lost the token, the group read
--          past the chunk, or the chunk's ids are not exactly what is pending in their range.
-- Atomic because the ack and the move back are one step: no reader may see the entries
-- neither pending nor ahead of the group's position, which would skip them.
-- allow-oom: XACK and XGROUP SETID add nothing, and a full Redis is when drains must finish.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local group, before = ARGV[2], ARGV[3]
local ids = {}
for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return 0 end
local last, read = group_position(KEYS[1], group)
if last ~= ids[#ids] then return 0 end
local pending = redis.call('XPENDING', KEYS[1], group, ids[1], ids[#ids], #ids + 1)
if #pending ~= #ids then return 0 end
for i, e in ipairs(pending) do
  if e[1] ~= ids[i] then return 0 end
end
redis.call('XACK', KEYS[1], group, unpack(ids))
if read then
  redis.call('XGROUP', 'SETID', KEYS[1], group, before, 'ENTRIESREAD', read - #ids)
else
  redis.call('XGROUP', 'SETID', KEYS[1], group, before)
end
return 1
