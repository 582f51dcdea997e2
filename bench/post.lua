-- wrk script: POST a JSON body to the URL given on the command line.
-- The body comes from the BENCH_BODY environment variable.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"parameters":{"name":"world"}}'
wrk.headers["Content-Type"] = "application/json"

-- Report error answers so a broken run cannot pass for a fast one. wrk counts every status of 400
-- and above itself; a `response` callback would do the same at the price of handing each response
-- to Lua, which costs the load generator (on the same 2 cores) a large share of its CPU.
done = function(summary, latency, requests)
  io.write(string.format("non2xx %d\n", summary.errors.status))
end
