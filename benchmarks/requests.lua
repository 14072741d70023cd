-- wrk script: sends the requests listed in the file named by WRK_REQUESTS, in turn, and prints
-- a JSON summary line (throughput, latency percentiles, errors) prefixed with "RESULT ", then
-- every latency recorded, as "HISTOGRAM <microseconds>:<count> ...", so that runs can be merged.
--
-- File lines, tab-separated:
--   H <name> <value>           a header sent with every request
--   T <index> <token>          an access token, referred to by its index
--   R <method> <path> <token>  a request; <token> is an index or "-" for none
--
-- benchmarks/loadgen.py reads the same format to send each request exactly once.

local common, tokens, lines, prepared = {}, {}, {}, {}
local next_index = 1

function init(args)
  for line in io.lines(os.getenv("WRK_REQUESTS")) do
    local fields = {}
    for part in string.gmatch(line, "[^\t]+") do
      table.insert(fields, part)
    end
    if fields[1] == "H" then
      common[fields[2]] = fields[3]
    elseif fields[1] == "T" then
      tokens[fields[2]] = fields[3]
    elseif fields[1] == "R" then
      table.insert(lines, fields)
    end
  end
  for i, fields in ipairs(lines) do
    local headers = {}
    for name, value in pairs(common) do
      headers[name] = value
    end
    if fields[4] ~= "-" then
      headers["Authorization"] = "Bearer " .. tokens[fields[4]]
    end
    prepared[i] = wrk.format(fields[2], fields[3], headers)
  end
end

function request()
  local prepared_request = prepared[next_index]
  next_index = next_index + 1
  if next_index > #prepared then
    next_index = 1
  end
  return prepared_request
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors_connect": %d, '
      .. '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout
  ))
  -- latency(i) is the i-th distinct latency recorded, in microseconds, and how many had it.
  local buckets = {}
  for i = 1, #latency do
    local value, count = latency(i)
    buckets[i] = string.format("%d:%d", value, count)
  end
  io.write("HISTOGRAM " .. table.concat(buckets, " ") .. "\n")
end
