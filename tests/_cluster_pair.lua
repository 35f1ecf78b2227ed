-- Test fixture: sets two keys to one value in one script run.
-- KEYS[1], KEYS[2]: the keys; in a cluster they must share a hash slot.
-- ARGV[1]: the value.
-- Returns: { value of KEYS[1], value of KEYS[2] }.
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return { redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) }
