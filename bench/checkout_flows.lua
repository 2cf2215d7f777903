-- wrk script: whole checkouts through a cart, each a chain of requests on one connection.
-- Run it with as many threads as connections (wrk -tN -cN): a thread's Lua state then
-- drives exactly one connection, so the chain of one checkout cannot mix with another's.
--
-- MODE (what one checkout is):
--   guest        POST /carts {} (201: id, token); POST /carts/{id}/items x LINES with
--                Cart-Token; PATCH /carts/{id} {email, shipping_address,
--                shipping_method_id}; POST /orders {"cart_id"} with Cart-Token (201 or 409);
--                the next checkout starts with a new cart.
--   customer     signed in (Bearer, one access token per thread from AUTH_FILE): the guest's
--                chain without e-mail: POST /carts {} answers the customer's cart (made
--                when they have none, so a cart that checkout removed is no problem),
--                POST /carts/{id}/items x LINES, PATCH /carts/{id} {shipping_address,
--                shipping_method_id}, POST /orders {"cart_id"}.
--   customer_v1  signed in: POST /cart/items x LINES, then POST /orders
--                {shipping_address, shipping_method_id} (the order of the cart's lines).
--   pay          signed in: place and pay. POST /orders {items, shipping_address,
--                shipping_method_id} (201 or 409), then POST /orders/{id}/payments
--                {"provider": "test", "payment_method": "pm_card_visa"} (201, captured).
--   pay_baseline the same chain on the baseline (paths without /api/v1).
-- After a 409 (short stock: the order was refused and the cart kept its lines) a customer
-- deletes the cart's lines (DELETE .../items/{id}, ids from the last cart answer, or from
-- POST /carts's answer) before the next checkout. Any status but the expected one also restarts the checkout (and is counted).
-- Lines: LINES distinct variants, 1 to MAX_QUANTITY units each; with probability
-- SCARCE_SHARE the first is a scarce variant, so scarce stock runs out and 409s follow.
--
-- Every response is counted by status and by step (create, item, patch, order, clear, pay); at
-- the end one machine-readable line is printed:
--   BENCH_RESULT {"requests": ..., "statuses": {"201": n}, "steps": {"order:201": n}, ...}
-- Usage: wrk -t32 -c32 -d20s --latency -s bench/checkout_flows.lua http://HOST:PORT -- \
--            VARIANTS_FILE SCARCE_FILE SCARCE_SHARE MODE AUTH_FILE METHOD_ID \
--            [LINES] [MAX_QUANTITY]            (AUTH_FILE: "-" for guests)

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

local API = "/api/v1"
local plenty = {}
local scarce = {}
local scarce_share = 0
local mode = "guest"
local token = nil -- the customer's access token
local method_id = ""
local lines = 3
local max_quantity = 3
counts = {} -- global: read by done() through thread:get
steps = {}

-- the state of this thread's one connection
local step = "create"
local cart_id = nil
local cart_token = nil
local picked = {}
local quantities = {}
local added = 0
local item_ids = {}
local cleared = 0
local order_id = nil -- pay: the order just placed

local address = '{"name": "Bench Buyer", "line1": "1 Load Street", "city": "Berlin", '
  .. '"postal_code": "10115", "country": "DE"}'

local function read_lines(file, into)
  for line in io.lines(file) do
    if #line > 0 then
      into[#into + 1] = line
    end
  end
end

function init(args)
  if args[6] == nil then
    error("pass VARIANTS_FILE SCARCE_FILE SCARCE_SHARE MODE AUTH_FILE METHOD_ID after --")
  end
  read_lines(args[1], plenty)
  read_lines(args[2], scarce)
  scarce_share = tonumber(args[3])
  mode = args[4]
  method_id = args[6]
  lines = tonumber(args[7] or "3")
  max_quantity = tonumber(args[8] or "3")
  if mode ~= "guest" and mode ~= "customer" and mode ~= "customer_v1" and mode ~= "pay"
    and mode ~= "pay_baseline" then
    error("MODE is guest, customer, customer_v1, pay or pay_baseline, not " .. mode)
  end
  if mode == "pay_baseline" then
    API = ""
  end
  if #plenty < lines then
    error("fewer than " .. lines .. " variants in " .. args[1])
  end
  if mode ~= "guest" then
    local tokens = {}
    read_lines(args[5], tokens)
    token = tokens[(thread_number or 0) + 1]
    if token == nil then
      error("fewer access tokens in " .. args[5] .. " than wrk threads")
    end
  end
  math.randomseed(os.time() + 7919 * ((thread_number or 0) + 1))
  if mode == "customer_v1" then
    step = "item"
  elseif mode == "pay" or mode == "pay_baseline" then
    step = "order"
  else
    step = "create"
  end
  new_checkout()
end

function new_checkout()
  local chosen = {}
  picked, quantities, added = {}, {}, 0
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
  for i = 1, #picked do
    quantities[i] = math.random(max_quantity)
  end
end

local function headers()
  local h = {["Content-Type"] = "application/json"}
  if token then
    h["Authorization"] = "Bearer " .. token
  elseif cart_token then
    h["Cart-Token"] = cart_token
  end
  return h
end

local function cart_path()
  if mode == "customer_v1" then
    return API .. "/cart"
  end
  return API .. "/carts/" .. cart_id
end

function request()
  if step == "create" then
    cart_id, cart_token = nil, nil
    return wrk.format("POST", API .. "/carts", headers(), "{}")
  elseif step == "item" then
    local n = added + 1
    local body = string.format('{"variant_id": "%s", "quantity": %d}', picked[n], quantities[n])
    return wrk.format("POST", cart_path() .. "/items", headers(), body)
  elseif step == "patch" then
    local email = ""
    if mode == "guest" then
      email = '"email": "guest@bench.example.com", '
    end
    local body = "{" .. email .. '"shipping_address": ' .. address
      .. ', "shipping_method_id": "' .. method_id .. '"}'
    return wrk.format("PATCH", cart_path(), headers(), body)
  elseif step == "pay" then
    return wrk.format("POST", API .. "/orders/" .. order_id .. "/payments", headers(),
      '{"provider": "test", "payment_method": "pm_card_visa"}')
  elseif step == "order" then
    local body
    if mode == "pay" or mode == "pay_baseline" then
      local items = {}
      for i, id in ipairs(picked) do
        items[i] = string.format('{"variant_id": "%s", "quantity": %d}', id, quantities[i])
      end
      body = '{"items": [' .. table.concat(items, ", ") .. '], "shipping_address": '
        .. address .. ', "shipping_method_id": "' .. method_id .. '"}'
    elseif mode == "customer_v1" then
      body = '{"shipping_address": ' .. address .. ', "shipping_method_id": "' .. method_id
        .. '"}'
    else
      body = '{"cart_id": "' .. cart_id .. '"}'
    end
    return wrk.format("POST", API .. "/orders", headers(), body)
  else -- clear
    return wrk.format("DELETE", cart_path() .. "/items/" .. item_ids[cleared + 1], headers())
  end
end

local function remember_items(body)
  item_ids = {}
  for id in string.gmatch(body, '{"id":"([%x%-]+)","variant_id"') do
    item_ids[#item_ids + 1] = id
  end
end

-- where a customer's checkout starts again: with POST /carts (customer: its answer shows
-- lines left over), or (customer_v1) by emptying the cart when it holds lines
local function restart_customer()
  new_checkout()
  if mode == "customer" then
    step = "create"
  elseif #item_ids > 0 then
    cleared, step = 0, "clear"
  else
    step = "item"
  end
end

function response(status, headers_, body)
  counts[status] = (counts[status] or 0) + 1
  local key = step .. ":" .. status
  steps[key] = (steps[key] or 0) + 1
  if step == "create" then
    if status == 201 then
      cart_id = string.match(body, '^{"id":"([%x%-]+)"')
      cart_token = string.match(body, '"token":"([^"]+)"')
      item_ids = {}
      remember_items(body)
      if #item_ids > 0 then -- a customer's cart kept lines from an interrupted run
        cleared, step = 0, "clear"
      else
        step = "item"
      end
    end -- else: try again
  elseif step == "item" then
    if status == 200 or status == 201 then -- /carts/{id}/items: 200; v1's /cart/items: 201
      remember_items(body)
      added = added + 1
      if added == #picked then
        step = (mode == "customer_v1") and "order" or "patch"
      end
    elseif mode == "guest" then
      new_checkout()
      step = "create"
    else
      restart_customer()
    end
  elseif step == "patch" then
    if status == 200 then
      step = "order"
    elseif mode == "guest" then
      new_checkout()
      step = "create"
    else
      restart_customer()
    end
  elseif step == "pay" then
    new_checkout()
    step = "order"
  elseif step == "order" and (mode == "pay" or mode == "pay_baseline") then
    order_id = (status == 201) and string.match(body, '^{"id":"([%x%-]+)"') or nil
    if order_id then
      step = "pay"
    else -- 409 (short stock) or anything else: the next checkout
      new_checkout()
    end
  elseif step == "order" then
    if mode == "guest" then
      new_checkout()
      step = "create"
    else
      if status == 201 then
        item_ids = {} -- checkout emptied the cart
      end
      restart_customer()
    end
  else -- clear
    cleared = cleared + 1
    if cleared >= #item_ids then
      item_ids = {}
      step = "item"
    end
  end
end

local function encode(t)
  local parts = {}
  for k, n in pairs(t) do
    parts[#parts + 1] = string.format('"%s": %d', tostring(k), n)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local statuses, by_step = {}, {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      statuses[status] = (statuses[status] or 0) + n
    end
    for key, n in pairs(thread:get("steps")) do
      by_step[key] = (by_step[key] or 0) + n
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d, "mean_us": %.1f, "stdev_us": %.1f, ' ..
    '"p50_us": %d, "p75_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"statuses": %s, "steps": %s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency.max, encode(statuses), encode(by_step)))
end
