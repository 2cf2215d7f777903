-- wrk script: GET request paths read from a file (one per line), rotating; each wrk thread
-- starts at a different offset. At the end it prints one machine-readable line:
--   BENCH_RESULT {"requests": ..., "p50_us": ..., "p99_us": ..., "status_errors": ...}
-- Usage: wrk -t2 -c64 -d12s --latency -s bench/rotate_paths.lua URL -- PATHS_FILE THREADS

local threads = {}
local paths = {}
local next_index = 1

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  if file == nil then
    error("pass the paths file after --")
  end
  for line in io.lines(file) do
    if #line > 0 then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("no paths in " .. file)
  end
  -- Spread the threads evenly over the list (args[2] = number of wrk threads), so within
  -- one run no two threads ask for the same path until each has gone through its share.
  local threads_total = tonumber(args[2]) or 1
  local share = math.floor(#paths / threads_total)
  next_index = ((thread_number or 0) * share) % #paths + 1
end

function request()
  local path = paths[next_index]
  next_index = next_index % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d, "mean_us": %.1f, "stdev_us": %.1f, ' ..
    '"p50_us": %d, "p75_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency.max))
end
