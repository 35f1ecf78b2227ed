-- oldest_needed.lua: the smallest id some consumer group still needs.
-- KEYS[1]  the stream.
-- ARGV     none.
-- Returns  the id (oldest pending, or the one after the last delivered), or nil without groups
--          or without the stream.
-- One script so the groups' positions are read at one instant.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return oldest_needed(KEYS[1])
