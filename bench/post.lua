-- wrk script: POST a JSON body to the URL given on the command line.
-- The body comes from the BENCH_BODY environment variable.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"parameters":{"name":"world"}}'
wrk.headers["Content-Type"] = "application/json"

-- Count non-2xx answers so a broken run cannot pass for a fast one.
local errors = 0
response = function(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("non2xx %d\n", summary.errors.status))
end
