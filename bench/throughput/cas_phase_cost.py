#!/usr/bin/env python3
"""What a phase write would cost Redis as a compare-and-swap (issue 11, the next Lua-level lever).

Today phase.lua parses each job's held entry (common_held.lua), builds its history entry and
event text and writes the entry back: 108k instructions a job for an upstream id and 79k for a
transfer (queue_cost_redistest under callgrind). In the design measured here the worker, which
knows what it last wrote, sends per job the head of the held entry as it stands (token first:
the fence), the new head, the history entry to append and the event text; the script only
compares, splices and writes. This drives that script against a redis-server the caller
started under callgrind, 1,000 held entries of the real layout's shape, 50 jobs a call, and
zeroes and dumps the counters around the writes:

  valgrind --tool=callgrind --callgrind-out-file=/tmp/cas.%p redis-server --port 6999 \\
      --save '' --appendonly no --hash-max-listpack-value 1024 &
  bench/throughput/cas_phase_cost.py 6999 <that pid>
  grep totals /tmp/cas.<pid>.1      # divided by 1,000: instructions a job

Not part of reelq: a measurement of a design, kept so the figure in README can be re-run.
"""
import subprocess
import sys

import resp_client

SCRIPT = r"""
local P, n = ARGV[1], tonumber(ARGV[2])
local w = P .. ':wjobs:w1'
local ids = {}
for k = 1, n do ids[k] = ARGV[3 + (k - 1) * 5] end
local cur = redis.call('HMGET', w, unpack(ids))
local put, out = {}, {}
local xadd = {P .. ':events', 'MAXLEN', '~', 100000, '*'}
for k = 1, n do
  local b = 3 + (k - 1) * 5
  local old, old_head, new_head = cur[k], ARGV[b + 1], ARGV[b + 2]
  if old and string.sub(old, 1, #old_head) == old_head then
    put[#put + 1] = ARGV[b]
    put[#put + 1] = new_head .. string.sub(old, #old_head + 1) .. ARGV[b + 3]
    xadd[#xadd + 1] = 'e'
    xadd[#xadd + 1] = ARGV[b + 4]
    out[k] = 'OK'
  else
    out[k] = 'LEASELOST'
  end
end
if #put > 0 then redis.call('HSET', w, unpack(put)) end
if #xadd > 5 then redis.call('XADD', unpack(xadd)) end
return out
"""
JOBS, PER_CALL, P = 1000, 50, "t:{q}"


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit() or not sys.argv[2].isdigit():
        sys.exit("usage: cas_phase_cost.py <redis port> <pid of the redis-server under callgrind>")
    port, pid = int(sys.argv[1]), sys.argv[2]
    call = resp_client.Client(port, timeout_s=0).call

    def head(i, seq, log, intent, upstream):
        return "\x1e%d/w1\x1fa1\x1f%d\x1fa1\x1f%s\x1f%s\x1f%s\x1f" % (i, seq, log, intent, upstream)

    rest = "b1\x1fstudio\x1f\x1fm1\x1fm1\x1f1\x1f100\x1f5\x1f720p\x1f0\x1f\x1f" + "x" * 150
    for i in range(JOBS):
        old = head(i, 3, "j%d:1733450000000" % i, "1733450000000:1", "")
        call("HSET", P + ":wjobs:w1", "j%d" % i, old + rest + "\x1fRUNNING|SUBMITTING|1733450000000|w1")
    call("HSET", P + ":wjobs:w1", "\x1ehashtable", "." * 4096)  # a hash table, as reelq keeps it
    sha = call("SCRIPT", "LOAD", SCRIPT).decode()
    subprocess.run(["callgrind_control", "-z", pid], stdout=subprocess.DEVNULL, check=True)
    for c in range(JOBS // PER_CALL):
        args = ["EVALSHA", sha, "0", P, str(PER_CALL)]
        for k in range(PER_CALL):
            i = c * PER_CALL + k
            args += ["j%d" % i,
                     head(i, 3, "j%d:1733450000000" % i, "1733450000000:1", ""),
                     head(i, 4, "", "", "task-%d" % i),
                     "\x1fRUNNING|GENERATING|1733450000100|",
                     "j%d\x1f4\x1fRUNNING\x1fGENERATING\x1f1733450000100\x1fb1\x1fstudio\x1f" % i]
        replies = call(*args)
        if any(r != b"OK" for r in replies):
            sys.exit("a write was refused: %r" % replies[:3])
    subprocess.run(["callgrind_control", "-d", pid], stdout=subprocess.DEVNULL, check=True)
    print("%d jobs written, %d a call" % (JOBS, PER_CALL))


if __name__ == "__main__":
    main()
