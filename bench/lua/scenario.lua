-- Requests of one benchmark scenario, for wrk.
--
--   wrk -t N -c N -s scenario.lua URL -- DATA_FILE SCENARIO
--
-- DATA_FILE is a Lua file (written by bench/run.py for each server) that
-- returns the URL prefix, the headers and the ids to use. Each wrk thread
-- has exactly one connection, so its requests and responses alternate and
-- the session scenario can carry the tag of one response into the next
-- request. done() prints one line "BENCH {json}" that the runner parses.

local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

local data, scenario, nthreads
local turn = 0
-- session scenario
local my_sessions = {}
local current = 1
local phase = "start"
local tags = {}
cycles = 0
resyncs = 0
unsuccessful = 0
unexpected = 0

local function pick(list)
   local item = list[(turn % #list) + 1]
   turn = turn + nthreads
   return item
end

function init(args)
   data = dofile(args[1])
   scenario = args[2]
   nthreads = data.threads
   turn = tid
   for name, value in pairs(data.headers) do
      wrk.headers[name] = value
   end
   if scenario == "session_cycle" then
      for i, pair in ipairs(data.sessions) do
         if (i - 1) % nthreads == tid then
            table.insert(my_sessions, pair)
            tags[#my_sessions] = 0
         end
      end
   end
end

local function session_request()
   local pair = my_sessions[current]
   local body
   if phase == "start" then
      body = string.format(
         '{"start": {"job_id": "%s", "current_tag": %d}}',
         pair[2], tags[current])
   else
      body = string.format(
         '{"end": {"job_id": "%s", "current_tag": %d, "result": "success"}}',
         pair[2], tags[current])
   end
   return wrk.format("POST", data.prefix .. "/sessions/" .. pair[1] ..
                     "/action", nil, body)
end

function request()
   if scenario == "poll" then
      local client = pick(data.clients)
      return wrk.format("GET", data.prefix .. "/jobs/?limit=10&offset=0", nil,
         '{"match": [{"client_id": "' .. client .. '"}], ' ..
         '"match_not": [{"status": "completed"}]}')
   elseif scenario == "get_job" then
      return wrk.format("GET", data.prefix .. "/jobs/" .. pick(data.jobs))
   elseif scenario == "patch_job" then
      return wrk.format("PATCH", data.prefix .. "/jobs/" ..
                        pick(data.patch_jobs), nil,
         '{"job_schedule": {"status": "scheduled", "event": "", ' ..
         '"result": "success", "current_pid": ' .. (turn % 30000) .. '}}')
   elseif scenario == "create_backup" then
      return wrk.format("POST", data.prefix .. "/backups/", nil,
                        data.backup_body)
   elseif scenario == "backup_search" then
      return wrk.format("GET", data.prefix .. "/backups/?limit=10&offset=0",
         nil, '{"match": [{"backup_name": "' .. pick(data.backup_names) ..
         '"}]}')
   elseif scenario == "session_cycle" then
      return session_request()
   end
   error("unknown scenario " .. tostring(scenario))
end

function response(status, headers, body)
   if status >= 300 then
      unexpected = unexpected + 1
   end
   if scenario ~= "session_cycle" then
      return
   end
   local tag = tonumber(string.match(body, '"session_tag"%s*:%s*(%d+)'))
   local result = string.match(body, '"result"%s*:%s*"([^"]*)"')
   if phase == "start" then
      if result == "success" and tag then
         tags[current] = tag
         phase = "end"
         return
      end
      if tag then
         tags[current] = tag
      end
      if result == "out-of-sync" and resyncs < #my_sessions then
         -- the tag moved on since this connection last saw the session
         -- (an earlier run): take the new one and start again.
         resyncs = resyncs + 1
         return
      end
      unsuccessful = unsuccessful + 1
   else
      if result == "success" then
         cycles = cycles + 1
      else
         unsuccessful = unsuccessful + 1
      end
      phase = "start"
   end
   current = (current % #my_sessions) + 1
end

function done(summary, latency, requests)
   local total_cycles, total_unsuccessful, total_unexpected = 0, 0, 0
   for _, thread in ipairs(threads) do
      total_cycles = total_cycles + (thread:get("cycles") or 0)
      total_unsuccessful = total_unsuccessful +
         (thread:get("unsuccessful") or 0)
      total_unexpected = total_unexpected + (thread:get("unexpected") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "connect_errors": %d, ' ..
      '"read_errors": %d, "write_errors": %d, "status_errors": %d, ' ..
      '"timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
      '"max_us": %d, "mean_us": %.1f, "cycles": %d, "unsuccessful": %d, ' ..
      '"unexpected": %d}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, total_cycles,
      total_unsuccessful, total_unexpected))
end
