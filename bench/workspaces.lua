-- wrk script: POST a hello run to one of BENCH_WORKSPACES workspaces (ws0 ... wsN-1), picked at
-- random for each request, so that every workspace is run throughout the test.
local count = tonumber(os.getenv("BENCH_WORKSPACES") or "200")
local body = '{"parameters":{"name":"world"}}'
local headers = {["Content-Type"] = "application/json"}

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

request = function()
  local path = string.format("/v2/functions/ws%d/run/hello", math.random(0, count - 1))
  return wrk.format("POST", path, headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format("non2xx %d\n", summary.errors.status))
  io.write(string.format("socket_errors %d\n", summary.errors.connect + summary.errors.read +
                         summary.errors.write + summary.errors.timeout))
end
