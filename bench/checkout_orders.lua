-- wrk script: POST random orders of LINES distinct variants (default 3), shipped to a
-- German address with the shipping method METHOD_ID (omitted when not given).
-- Variant ids are read from two files (one per line): the plentiful ones and the "scarce"
-- ones; with probability SCARCE_SHARE the first line of an order is a scarce variant.
-- Quantities are 1 to MAX_QUANTITY. Every response status is counted per thread; at the
-- end one machine-readable line is printed:
--   BENCH_RESULT {"requests": ..., "p50_us": ..., "statuses": {"201": n, "409": n}, ...}
-- Usage: wrk -t2 -c32 -d20s --latency -s bench/checkout_orders.lua URL -- \
--            VARIANTS_FILE SCARCE_FILE SCARCE_SHARE TOKEN [LINES] [MAX_QUANTITY] [METHOD_ID]

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

local plenty = {}
local scarce = {}
local scarce_share = 0
local lines = 3
local max_quantity = 3
local method = ""
counts = {} -- global: read by done() through thread:get

local function read_ids(file, into)
  for line in io.lines(file) do
    if #line > 0 then
      into[#into + 1] = line
    end
  end
end

function init(args)
  if args[4] == nil then
    error("pass VARIANTS_FILE SCARCE_FILE SCARCE_SHARE TOKEN after --")
  end
  read_ids(args[1], plenty)
  read_ids(args[2], scarce)
  scarce_share = tonumber(args[3])
  lines = tonumber(args[5] or "3")
  max_quantity = tonumber(args[6] or "3")
  if args[7] ~= nil and #args[7] > 0 then
    method = ', "shipping_method_id": "' .. args[7] .. '"'
  end
  if #plenty < lines then
    error("fewer than " .. lines .. " variants in " .. args[1])
  end
  math.randomseed(os.time() + 7919 * ((thread_number or 0) + 1))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[4]
end

local address = '"shipping_address": {"name": "Bench Buyer", "line1": "1 Load Street", '
  .. '"city": "Berlin", "postal_code": "10115", "country": "DE"}'

function request()
  local chosen = {}
  local picked = {}
  if #scarce > 0 and math.random() < scarce_share then
    local id = scarce[math.random(#scarce)]
    chosen[id] = true
    picked[1] = id
  end
  while #picked < lines do
    local id = plenty[math.random(#plenty)]
    if not chosen[id] then
      chosen[id] = true
      picked[#picked + 1] = id
    end
  end
  local items = {}
  for i, id in ipairs(picked) do
    items[i] = string.format('{"variant_id": "%s", "quantity": %d}', id,
      math.random(max_quantity))
  end
  local body = '{"items": [' .. table.concat(items, ", ") .. '], ' .. address .. method .. '}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local statuses = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, n in pairs(c) do
      statuses[status] = (statuses[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(statuses) do
    parts[#parts + 1] = string.format('"%d": %d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d, "mean_us": %.1f, "stdev_us": %.1f, ' ..
    '"p50_us": %d, "p75_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency.max, table.concat(parts, ", ")))
end
