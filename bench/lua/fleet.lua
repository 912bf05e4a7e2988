-- A fleet of freezer-schedulers, for wrk (see bench/fleet.py).
--
--   wrk -t C -c C -s fleet.lua URL -- DATA_FILE
--
-- Each wrk thread has one connection and plays its share of the fleet's
-- schedulers from a timetable: every scheduler polls its jobs every
-- data.poll_seconds (the scheduler's default is 60 s) at a random phase,
-- fetching a second page when the first is full as freezer-scheduler does;
-- every data.run_seconds it runs one of its jobs: PATCH running, then after
-- data.agent_seconds the agent's backup metadata, then PATCH scheduled.
-- Schedulers given a session run it around their job: session start after
-- the PATCH, session end before the last PATCH.
--
-- wrk's own latency counts from when a request was written. A fleet does not
-- wait for a slow server, so this script also measures each request from
-- the moment its scheduler meant to send it ("fleet latency"): a server that
-- falls behind shows there even when each request is quick once sent.

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } fleet_timespec;
int clock_gettime(int clk_id, fleet_timespec *tp);
]]
local ts = ffi.new("fleet_timespec")
local function now_ms()
   ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
   return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

local data
local heap = {}
local inflight = nil
local t0 = nil
-- fleet latency histogram: 0.1 ms buckets below 1 s, then 10 ms buckets
hist = {}
sent = 0
late = 0        -- requests sent more than data.late_ms after their time
unexpected = 0  -- answers >= 300, or a session that could not be run
resyncs = 0
max_fleet_ms = 0
kinds = {}

local function push(ev)
   heap[#heap + 1] = ev
   local i = #heap
   while i > 1 do
      local p = math.floor(i / 2)
      if heap[p].t <= heap[i].t then break end
      heap[p], heap[i] = heap[i], heap[p]
      i = p
   end
end

local function pop()
   local top = heap[1]
   local last = heap[#heap]
   heap[#heap] = nil
   if #heap > 0 then
      heap[1] = last
      local i, n = 1, #heap
      while true do
         local l, r, m = 2 * i, 2 * i + 1, i
         if l <= n and heap[l].t < heap[m].t then m = l end
         if r <= n and heap[r].t < heap[m].t then m = r end
         if m == i then break end
         heap[m], heap[i] = heap[i], heap[m]
         i = m
      end
   end
   return top
end

local function bucket(ms)
   if ms < 1000 then return math.floor(ms * 10) end
   return 10000 + math.floor((ms - 1000) / 10)
end

local function node(s)
   return string.format(data.node_format, s)
end

local function job_of(s, n)
   return string.format(data.job_format, s, n % data.jobs_per_node)
end

local function session_of(s)
   -- the first schedulers run their jobs inside a session, one each
   if s < #data.sessions then return data.sessions[s + 1] end
   return nil
end

local function run_event(s, n, t)
   local session = session_of(s)
   return {t = t, kind = "run", s = s, n = n,
           job = session and session[2] or job_of(s, n)}
end

function init(args)
   data = dofile(args[1])
   math.randomseed(1000 + tid)
   for name, value in pairs(data.headers) do
      wrk.headers[name] = value
   end
   -- every event is in ms from t0 (set at the first request)
   local nthreads = data.threads
   for s = tid, data.schedulers - 1, nthreads do
      local first = math.random() * data.poll_seconds * 1000
      push({t = first, kind = "poll", s = s, offset = 0, cycle = first})
      push(run_event(s, 0, math.random() * data.run_seconds * 1000))
   end
end

local function schedule_body(status, result)
   return string.format(
      '{"job_schedule": {"schedule_interval": "%d seconds", ' ..
      '"status": "%s", "result": "%s", "event": "", ' ..
      '"time_started": %d, "time_ended": -1}, ' ..
      '"session_id": "", "session_tag": 0}',
      data.run_seconds, status, result, os.time())
end

local function request_of(ev)
   local k = ev.kind
   if k == "poll" then
      return wrk.format("GET", data.prefix .. "/jobs/?limit=10&offset=" ..
         ev.offset, nil,
         '{"match_not": [{"status": "completed"}], ' ..
         '"match": [{"client_id": "' .. node(ev.s) .. '"}]}')
   elseif k == "run" or k == "finish" then
      local job = ev.job
      local status = k == "run" and "running" or "scheduled"
      local result = k == "run" and "" or "success"
      return wrk.format("PATCH", data.prefix .. "/jobs/" .. job, nil,
                        schedule_body(status, result))
   elseif k == "backup" then
      return wrk.format("POST", data.prefix .. "/backups/", nil,
                        data.backup_body)
   elseif k == "start" or k == "end" then
      local pair = ev.session
      local body
      if k == "start" then
         body = string.format(
            '{"start": {"job_id": "%s", "current_tag": %d}}',
            pair[2], pair.tag or 0)
      else
         body = string.format(
            '{"end": {"job_id": "%s", "current_tag": %d, ' ..
            '"result": "success"}}', pair[2], pair.tag or 0)
      end
      return wrk.format("POST", data.prefix .. "/sessions/" .. pair[1] ..
                        "/action", nil, body)
   end
   error("unknown event " .. tostring(k))
end

function delay()
   if t0 == nil or #heap == 0 then return 0 end
   local wait = heap[1].t - (now_ms() - t0)
   if wait < 1 then return 0 end
   return math.floor(wait)
end

function request()
   local now = now_ms()
   if t0 == nil then t0 = now end
   local ev = pop()
   local lag = (now - t0) - ev.t
   if lag > data.late_ms then late = late + 1 end
   -- an event sent early (a connection's first request is never delayed)
   -- counts from when it was sent
   ev.due = math.max(ev.t, now - t0)
   inflight = ev
   sent = sent + 1
   kinds[ev.kind] = (kinds[ev.kind] or 0) + 1
   return request_of(ev)
end

local function record(ev)
   local ms = (now_ms() - t0) - ev.due
   if ms < 0 then ms = 0 end
   if ms > max_fleet_ms then max_fleet_ms = ms end
   local b = bucket(ms)
   hist[b] = (hist[b] or 0) + 1
end

local function count_jobs(body)
   local n = 0
   for _ in string.gmatch(body, '"job_id"') do n = n + 1 end
   return n
end

function response(status, headers, body)
   local ev = inflight
   inflight = nil
   if ev == nil then return end
   record(ev)
   local now = now_ms() - t0
   if status >= 300 then unexpected = unexpected + 1 end
   local k = ev.kind
   if k == "poll" then
      if status < 300 and ev.offset == 0 and count_jobs(body) >= 10 then
         -- a full page: the scheduler asks for the next one at once
         push({t = now, kind = "poll", s = ev.s, offset = 10,
               cycle = ev.cycle})
      else
         push({t = ev.cycle + data.poll_seconds * 1000, kind = "poll",
               s = ev.s, offset = 0, cycle = ev.cycle +
               data.poll_seconds * 1000})
      end
   elseif k == "run" then
      -- the next run of this scheduler, and the rest of this one
      push(run_event(ev.s, ev.n + 1, ev.t + data.run_seconds * 1000))
      local session = session_of(ev.s)
      if session then
         push({t = now, kind = "start", session = session, s = ev.s,
               job = ev.job, tries = 0})
      else
         push({t = now + data.agent_seconds * 1000, kind = "backup",
               s = ev.s, job = ev.job})
      end
   elseif k == "start" or k == "end" then
      local pair = ev.session
      local tag = tonumber(string.match(body, '"session_tag"%s*:%s*(%d+)'))
      local result = string.match(body, '"result"%s*:%s*"([^"]*)"')
      if tag then pair.tag = tag end
      if result == "success" then
         if k == "start" then
            push({t = now + data.agent_seconds * 1000, kind = "backup",
                  s = ev.s, job = ev.job, session = pair})
         else
            push({t = now, kind = "finish", s = ev.s, job = ev.job})
         end
      elseif ev.tries < 3 then
         -- the tag moved on (an earlier run ended elsewhere): again
         resyncs = resyncs + 1
         push({t = now, kind = k, session = pair, s = ev.s, job = ev.job,
               tries = ev.tries + 1})
      else
         unexpected = unexpected + 1
         push({t = now, kind = "finish", s = ev.s, job = ev.job})
      end
   elseif k == "backup" then
      if ev.session then
         push({t = now, kind = "end", session = ev.session, s = ev.s,
               job = ev.job, tries = 0})
      else
         push({t = now, kind = "finish", s = ev.s, job = ev.job})
      end
   end
end

function done(summary, latency, requests)
   local merged = {}
   local total_sent, total_late, total_unexpected, total_resyncs = 0, 0, 0, 0
   local fleet_max = 0
   local by_kind = {}
   for _, thread in ipairs(threads) do
      total_sent = total_sent + (thread:get("sent") or 0)
      total_late = total_late + (thread:get("late") or 0)
      total_unexpected = total_unexpected + (thread:get("unexpected") or 0)
      total_resyncs = total_resyncs + (thread:get("resyncs") or 0)
      local m = thread:get("max_fleet_ms") or 0
      if m > fleet_max then fleet_max = m end
      for b, n in pairs(thread:get("hist") or {}) do
         merged[b] = (merged[b] or 0) + n
      end
      for k, n in pairs(thread:get("kinds") or {}) do
         by_kind[k] = (by_kind[k] or 0) + n
      end
   end
   local keys = {}
   local count = 0
   for b, n in pairs(merged) do
      keys[#keys + 1] = b
      count = count + n
   end
   table.sort(keys)
   local function pct(p)
      local want, acc = count * p / 100, 0
      for _, b in ipairs(keys) do
         acc = acc + merged[b]
         if acc >= want then
            if b < 10000 then return (b + 1) / 10 end
            return 1000 + (b - 10000 + 1) * 10
         end
      end
      return 0
   end
   local kind_parts = {}
   for k, n in pairs(by_kind) do
      kind_parts[#kind_parts + 1] = string.format('"%s": %d', k, n)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "connect_errors": %d, ' ..
      '"read_errors": %d, "write_errors": %d, "status_errors": %d, ' ..
      '"timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"fleet_p50_ms": %.1f, "fleet_p99_ms": %.1f, "fleet_max_ms": %.1f, ' ..
      '"sent": %d, "late": %d, "unexpected": %d, "resyncs": %d, ' ..
      '"kinds": {%s}}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(99),
      latency.max, pct(50), pct(99), fleet_max, total_sent, total_late,
      total_unexpected, total_resyncs, table.concat(kind_parts, ", ")))
end
