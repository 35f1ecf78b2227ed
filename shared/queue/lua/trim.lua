-- trim.lua: lag-safe trimming.
-- KEYS[1]  the stream.
-- ARGV     maxlen (entries to keep), limit (most entries this call removes).
-- Returns  the number of entries removed.
-- Atomic because the oldest entry some group still needs must not move between reading it
-- and trimming below it; the limit bounds the time Redis is blocked.
return safe_trim(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
