#!/usr/bin/env python3
"""The worker's TRANSFERRING write in Lua (reelq's phase function) against native code in a
Redis module issuing the same commands (transfer_module.cpp), counted in Redis's instructions.

Starts its own redis-server under callgrind (Debian `valgrind`) with the module loaded and
reelq's function library (taken from the build's queue/lua_scripts.cpp), writes 1,000 held
entries of the real layout (common_held.lua, layout 3) and moves them all to TRANSFERRING, once
with the phase function and once with the module's command, at 50 and at 2 jobs a call. Each
run zeroes the counters before its calls and dumps them after; per job = total / 1,000.

  bench/throughput/module_spike/module_cost.py <module .so> <build dir>
  bench/throughput/module_spike/module_cost.py --check <module .so> <build dir>

--check runs no callgrind: it moves the same entries both ways on a plain redis-server and
fails unless both leave the same held entries, slot counts, events and wake-up (ctest
bench_module_spike_check), so the two measure the same work.

Not part of reelq: a measurement of a design (issue 11), kept so its figure can be re-run.
"""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from resp_client import Client, ServerExited  # noqa: E402

JOBS, P, NOW = 1000, "t:{q}", "1733450000200"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def entry(i):
    # As after the upstream id was recorded (GENERATING), holding a slot of account a1.
    return ("\x1e%d/w1\x1fa1\x1f4\x1fa1\x1f\x1f\x1fupstream-task-%d\x1fbatch-7\x1fstudio\x1f"
            "\x1fkling-3.0,sora-2\x1fkling-3.0\x1f\x1f\x1f8\x1f1080p\x1f\x1f\x1f"
            "\x1fPENDING||1733450000000|\x1fDISPATCHED||1733450000000|kling-3.0 via a1"
            "\x1fRUNNING|SUBMITTING|1733450000000|w1\x1fRUNNING|GENERATING|1733450000100|" % (i, i))


def main():
    argv = sys.argv[1:]
    check = argv[:1] == ["--check"]
    if check:
        argv = argv[1:]
    if len(argv) != 2:
        sys.exit("usage: module_cost.py [--check] <transfer_module.so> <reelq build dir>")
    module, build = os.path.abspath(argv[0]), argv[1]
    if not os.path.isfile(module):
        sys.exit("module_cost.py: no module at %s (cmake --build <build dir> --target "
                 "reelq-transfer-spike)" % module)
    scripts = os.path.join(build, "queue", "lua_scripts.cpp")
    if not os.path.isfile(scripts):
        sys.exit("module_cost.py: %s is not a built reelq build directory (no %s)" % (build, scripts))
    cpp = open(scripts).read()
    library = re.search(r'k_library = R"REELQLUA\((.*?)\)REELQLUA"', cpp, re.S).group(1)
    phase = re.search(r"function_name = '(reelq_[0-9a-f]+_phase)'", library).group(1)

    out_dir = tempfile.mkdtemp(prefix="module-cost-")
    # The binary the test harness would use (tests/support/redis_server.cpp).
    binary = os.environ.get("REELQ_REDIS_SERVER") or "/usr/bin/redis-server"

    def die_with_us():  # the server is killed even when this script is (PR_SET_PDEATHSIG)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)

    # A free port can be taken by another process before the server binds it: then another.
    for attempt in range(5):
        port = free_port()
        redis = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", out_dir,
                 "--save", "", "--appendonly", "no", "--hash-max-listpack-value", "1024",
                 "--loadmodule", module]
        if not check:
            redis = ["valgrind", "--tool=callgrind",
                     "--callgrind-out-file=%s/cg.%%p" % out_dir] + redis
        log_path = os.path.join(out_dir, "redis.log")
        with open(log_path, "w") as log:
            server = subprocess.Popen(redis, stdout=log, stderr=subprocess.STDOUT,
                                      preexec_fn=die_with_us)
        try:
            c = Client(port, server)
            break
        except ServerExited as e:
            said = open(log_path).read()
            # Only a port taken first is worth another try; anything else (the module refused,
            # say) would fail the same way again.
            if "Address already in use" not in said or attempt == 4:
                shutil.rmtree(out_dir, ignore_errors=True)
                sys.exit("module_cost.py: %s; its log ends:\n%s" % (e, said[-800:]))
    try:
        c.call("FUNCTION", "LOAD", library)
        pid = str(server.pid)

        def reset():
            c.call("DEL", P + ":wjobs:w1", P + ":acct:a1", P + ":events", P + ":dwake")
            args = ["HSET", P + ":wjobs:w1", "\x1ehashtable", "." * 4096]  # as reelq pads it
            for i in range(JOBS):
                args += ["j%d" % i, entry(i)]
            c.call(*args)
            c.call("HSET", P + ":acct:a1", "in_flight", str(JOBS))

        def run(name, per_call, make_call):
            for first in range(0, JOBS, per_call):
                replies = c.call(*make_call(range(first, min(JOBS, first + per_call))))
                if any(r != b"OK" for r in replies):
                    sys.exit("%s: a write was refused: %r" % (name, replies[:3]))

        def after():
            events = [e[1] for e in c.call("XRANGE", P + ":events", "-", "+")]
            return (sorted(c.call("HGETALL", P + ":wjobs:w1")),
                    c.call("HGET", P + ":acct:a1", "in_flight"), events,
                    c.call("LRANGE", P + ":dwake", "0", "-1"))

        def measure(name, per_call, make_call):
            reset()
            subprocess.run(["callgrind_control", "-z", pid], stdout=subprocess.DEVNULL, check=True)
            run(name, per_call, make_call)
            subprocess.run(["callgrind_control", "-d", pid], stdout=subprocess.DEVNULL, check=True)
            dumps = sorted((f for f in os.listdir(out_dir) if f.startswith("cg.%s." % pid)),
                           key=lambda f: int(f.rsplit(".", 1)[1]))
            text = open(os.path.join(out_dir, dumps[-1])).read()
            total = int(re.search(r"^(?:totals|summary): (\d+)", text, re.M).group(1))
            left = int(c.call("HGET", P + ":acct:a1", "in_flight"))
            if left != 0:
                sys.exit("%s: %d slots not given back" % (name, left))
            print("%-28s %2d a call: %7.1fk instructions a job" % (name, per_call, total / 1000 / JOBS))
            return total / JOBS

        def lua(ids):
            args = ["FCALL", phase, "1", P + ":meta", P, NOW, str(len(ids))]
            for i in ids:
                args += ["3", "id", "j%d" % i, "token", "%d/w1" % i, "phase", "TRANSFERRING"]
            return args

        def native(ids):
            args = ["reelqspike.transfer", P, NOW, str(len(ids))]
            for i in ids:
                args += ["j%d" % i, "%d/w1" % i]
            return args

        if check:
            for per_call in (50, 2):
                seen = []
                for name, make_call in (("lua", lua), ("native", native)):
                    reset()
                    run(name, per_call, make_call)
                    seen.append(after())
                if seen[0] != seen[1]:
                    for part, a, b in zip(("held entries", "in_flight", "events", "dwake"), *seen):
                        if a != b:
                            sys.exit("%d a call: the module's %s differ from the phase "
                                     "function's: %r against %r" % (per_call, part, b[:2], a[:2]))
                print("%d a call: the module and the phase function leave the same state "
                      "(%d entries, %d events)" % (per_call, len(seen[0][0]) // 2, len(seen[0][2])))
            return

        figures = {}
        for per_call in (50, 2):
            figures[("lua", per_call)] = measure("phase function (Lua)", per_call, lua)
            figures[("native", per_call)] = measure("module command (native)", per_call, native)
        print("callgrind's dumps: %s" % out_dir)
        print(" ".join("%s_%d_kinstr_per_job=%.1f" % (k, n, v / 1000) for (k, n), v in figures.items()))
    finally:
        server.terminate()
        server.wait(timeout=60)
        if check:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
