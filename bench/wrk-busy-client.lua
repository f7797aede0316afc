-- A diagnostic for the uncached batch target: wrk asking for the batch's
-- manifests in turn (t0..t999 of bench/app), spending SPIN_US microseconds
-- of CPU on each response, as a client with that much work per manifest
-- would. Shows what a client's own CPU costs on a machine whose cores the
-- registry shares:
--   SPIN_US=100 wrk -t 1 -c 8 -d 2s -s bench/wrk-busy-client.lua \
--     -H "Accept: ..." http://REGISTRY/
local counter = 0
request = function()
  local path = "/v2/bench/app/manifests/t" .. (counter % 1000)
  counter = counter + 1
  return wrk.format("GET", path)
end

local spin = tonumber(os.getenv("SPIN_US") or "0")
response = function(status, headers, body)
  if spin > 0 then
    local stop = os.clock() + spin / 1e6
    while os.clock() < stop do end
  end
end
