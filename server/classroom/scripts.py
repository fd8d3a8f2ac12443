"""The Lua scripts `RedisRooms` runs: each change to a room is one atomic step in Redis, so two
processes never hand out one seat, one name or one free place twice.

A room CODE is the hash `ds:room:{CODE}` (secret digest, prompt, claimed, address, next seat
number) and beside it hashes keyed by student id: `:seats` (name, name key, rejoin token,
order, away), `:tiles` (digit, confidence, preview), `:holders` (the connection holding the
seat), plus `:tokens` (rejoin token → id) and `:names` (name key → id). Events are published
on `ds:events:{CODE}:dash` (dashboards) and `ds:events:{CODE}:seats` (students).
"""

# KEYS: room, seats, tiles, holders, tokens, names, active, away
# ARGV: rejoin, new id, new token, holder, max students, now, code, dash channel, seats channel,
#       then (name, name key) pairs to try in order
JOIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local student = false
if ARGV[1] ~= '' then student = redis.call('HGET', KEYS[5], ARGV[1]) end
local seat
if student then
  seat = cjson.decode(redis.call('HGET', KEYS[2], student))
  seat['away'] = false
  seat['was'] = nil
  redis.call('ZREM', KEYS[8], ARGV[7] .. ' ' .. student)
else
  if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[5]) then return {'full'} end
  student = ARGV[2]
  for i = 10, #ARGV, 2 do
    if redis.call('HSETNX', KEYS[6], ARGV[i + 1], student) == 1 then
      seat = {name = ARGV[i], key = ARGV[i + 1], rejoin = ARGV[3], away = false,
              order = redis.call('HINCRBY', KEYS[1], 'next', 1)}
      break
    end
  end
  if not seat then return {'full'} end
  redis.call('HSET', KEYS[5], ARGV[3], student)
end
redis.call('HSET', KEYS[2], student, cjson.encode(seat))
redis.call('HSET', KEYS[4], student, ARGV[4])
redis.call('ZADD', KEYS[7], ARGV[6], ARGV[7])
redis.call('PUBLISH', ARGV[8], '{"e": "tiles", "changed": ["' .. student .. '"], "removed": []}')
redis.call('PUBLISH', ARGV[9], '{"e": "seated", "id": "' .. student .. '", "holder": "' .. ARGV[4] .. '"}')
return {'ok', student, seat['name'], seat['rejoin'], redis.call('HGET', KEYS[1], 'prompt')}
"""

# A seat dropped for its holder (its process was taken for dead while it was only slow) is
# taken back by that holder's next update, unless someone rejoined it meanwhile.
# KEYS: holders, tiles, active, seats, away, this process's seats.
# ARGV: id, holder, tile JSON, now, code, dash channel, event
UPDATE = """
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder ~= ARGV[2] then
  local raw = redis.call('HGET', KEYS[4], ARGV[1])
  if holder or not raw then return 0 end
  local seat = cjson.decode(raw)
  if seat['was'] ~= ARGV[2] then return 0 end
  seat['away'] = false
  seat['was'] = nil
  redis.call('HSET', KEYS[4], ARGV[1], cjson.encode(seat))
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZREM', KEYS[5], ARGV[5] .. ' ' .. ARGV[1])
  redis.call('SADD', KEYS[6], ARGV[5] .. ' ' .. ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""

# The seat's connection ended, or its process was taken for dead: keep the seat, away, until a
# rejoin or the deadline. Only a process taken for dead (it may have been only slow) may take
# the seat back; an ended connection's late tile write must not.
# KEYS: holders, seats, away. ARGV: id, holder prefix, deadline, code, dash channel, event, reclaimable
DROP = """
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if not holder or string.sub(holder, 1, #ARGV[2]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local seat = cjson.decode(redis.call('HGET', KEYS[2], ARGV[1]))
seat['away'] = true
if ARGV[7] == '1' then seat['was'] = holder else seat['was'] = nil end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(seat))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4] .. ' ' .. ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
"""

# Free a seat. Mode 'holder': only for the connection holding it; 'away': only if nobody holds
# it and its grace has run out; 'any': the teacher removes it.
# KEYS: seats, tiles, holders, tokens, names, away. ARGV: id, mode, holder, code, now, dash channel, event
VACATE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local holder = redis.call('HGET', KEYS[3], ARGV[1])
local member = ARGV[4] .. ' ' .. ARGV[1]
if ARGV[2] == 'holder' and holder ~= ARGV[3] then return 0 end
if ARGV[2] == 'away' then
  local deadline = redis.call('ZSCORE', KEYS[6], member)
  if holder or (deadline and tonumber(deadline) > tonumber(ARGV[5])) then return 0 end
end
local seat = cjson.decode(raw)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], seat['rejoin'])
redis.call('HDEL', KEYS[5], seat['key'])
redis.call('ZREM', KEYS[6], member)
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""

# Only the process whose DEL removed the room tells everyone, however many close it at once.
# KEYS: room, seats, tiles, holders, tokens, names, active, unclaimed, away.
# ARGV: code, dash channel, seats channel, event
CLOSE = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
for _, student in ipairs(redis.call('HKEYS', KEYS[2])) do
  redis.call('ZREM', KEYS[9], ARGV[1] .. ' ' .. student)
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[4])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""

# A token bucket that a take costs one token: ARGV capacity, refill per second, now.
# Returns {1 if allowed, seconds until a token as a string}.
BUCKET = """
local capacity, rate, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bucket = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(bucket[1]) or capacity
local updated = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
return {allowed, tostring(wait)}
"""

# Small steps that must not recreate a room another process has just closed.
# CLAIM: a right secret digest marks the room as opened by a dashboard. KEYS: room, unclaimed.
#   It compares digests, so its timing says nothing about the secret itself.
# PROMPT: KEYS room, active; ARGV digit or '', now, code, seats channel, event, dash channel, event.
# CLEAR: blank every tile; returns the students. KEYS room, seats, tiles, active; ARGV now, code.
CLAIM = """
if redis.call('HGET', KEYS[1], 'secret') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'claimed', '1')
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""
PROMPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'prompt', ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""
CLEAR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('DEL', KEYS[3])
redis.call('ZADD', KEYS[4], 'XX', ARGV[1], ARGV[2])
return redis.call('HKEYS', KEYS[2])
"""
