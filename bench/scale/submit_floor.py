#!/usr/bin/env python3
"""Redis CPU per submitted job: submit.lua against the bare writes it makes (issue 11).

Starts its own redis-server (AOF on, everysec, as the e2e stack), loads queue/lua/submit.lua
with the common parts prepended (as queue/CMakeLists.txt does), sends it calls of 200 jobs
shaped like bench-scale's (tenant, batch, one noop model, a 44-byte spec) and reads the server's
CPU from /proc before and after, with used_memory. Beside it, scripts that only make the writes
(one HSET of the same 11 fields, N sorted-set entries, one list push and one stream entry per
call), which is the floor of the layout whatever the Lua does. Run by hand: python3 bench/scale/submit_floor.py
(standard library only; `--reps 3` medians).
"""
import argparse
import os
import random
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LUA = os.path.join(ROOT, 'queue', 'lua')
ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
SPEC = bytes(random.getrandbits(8) for _ in range(44))


def resp(args):
    out = [b'*%d\r\n' % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b'$%d\r\n%s\r\n' % (len(a), a))
    return b''.join(out)


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.file = self.sock.makefile('rb')

    def call(self, *args):
        self.sock.sendall(resp(args))
        return self.read()

    def read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b'-':
            raise RuntimeError(rest.decode())
        if kind in (b'+', b':'):
            return rest
        if kind == b'$':
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b'*':
            n = int(rest)
            return [self.read() for _ in range(n)] if n >= 0 else None
        raise RuntimeError('unexpected reply ' + repr(line))


def cpu_ms(pid):
    fields = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf('SC_CLK_TCK')


def used_memory(client):
    info = client.call('INFO', 'memory').decode()
    return int(next(l for l in info.split('\r\n') if l.startswith('used_memory:')).split(':')[1])


def job_id():
    return ''.join(random.choice(ALPHABET) for _ in range(26))


def stored_fields(now):
    return ['state', 'PENDING', 'seq', '1', 'created', str(now), 'tenant', 'default', 'score',
            '1769811219299728', 'models', 'noop-1', 'max_attempts', '5', 'spec', SPEC, 'secs', '5',
            'res', '720p', 'batch', 'deep']


def submit_args(chunk):
    """submit.lua's ARGV: P now idem_ttl n groups nc, the call's fields, then per job: k, id and
    its own fields (job_codec.cpp's AppendNewJobs: what every job shares goes once per call)."""
    now = int(time.time() * 1000)
    call = ['score', '1769811219299728', 'tenant', 'default', 'models', 'noop-1',
            'max_attempts', '5', 'secs', '5', 'res', '720p', 'batch', 'deep']
    args = ['P', now, 86400, chunk, 0, len(call) // 2] + call
    for _ in range(chunk):
        args += [2, 'id', job_id(), 'spec', SPEC]
    return args


def floor_args(chunk):
    now = int(time.time() * 1000)
    args = ['P', now, chunk]
    for _ in range(chunk):
        f = stored_fields(now)
        args += [len(f), job_id()] + f
    return args


def floor_script(entries, hset=True, event=False, id_list=False):
    return '''
local P, now, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local i, z, ids = 4, {}, {}
for k = 1, n do
  local m, id = tonumber(ARGV[i]), ARGV[i + 1]
  %s
  z[2 * k - 1] = now; z[2 * k] = id; ids[k] = id
  i = i + 2 + m
end
for q = 1, %d do redis.call('ZADD', P .. ':z' .. q, unpack(z)) end
%s
%s
return n
''' % ("redis.call('HSET', P .. ':job:' .. id, unpack(ARGV, i + 2, i + 1 + m))" if hset else '',
       entries,
       "redis.call('XADD', P .. ':events', '*', 's', table.concat(ids, ','))" if event else '',
       "redis.call('RPUSH', P .. ':ids', unpack(ids))" if id_list else '')


def submit_script():
    with open(os.path.join(LUA, 'PRELUDE')) as prelude:
        parts = [line.strip() for line in prelude if line.strip() and not line.startswith('#')]
    parts.append('submit.lua')
    return '\n'.join(open(os.path.join(LUA, p)).read() for p in parts)


def measure(script, make_args, jobs, chunk, aof):
    for _ in range(10):
        workdir = tempfile.mkdtemp()
        port = random.randint(20000, 60000)
        server = subprocess.Popen(
            ['redis-server', '--port', str(port), '--dir', workdir, '--save', '',
             '--appendonly', 'yes' if aof else 'no', '--appendfsync', 'everysec',
             '--hash-max-listpack-value', '1024', '--logfile', os.path.join(workdir, 'log')])
        client = None
        for _ in range(100):
            try:
                client = Client(port)
                break
            except OSError:
                time.sleep(0.05)
        if client:
            break
        server.terminate()
        server.wait()
    try:
        sha = client.call('SCRIPT', 'LOAD', script)
        calls = [make_args(chunk) for _ in range(jobs // chunk)]
        memory, cpu = used_memory(client), cpu_ms(server.pid)
        for args in calls:
            client.call('EVALSHA', sha, 0, *args)
        cpu = cpu_ms(server.pid) - cpu
        memory = used_memory(client) - memory
    finally:
        server.terminate()
        server.wait()
        subprocess.run(['rm', '-rf', workdir])
    n = (jobs // chunk) * chunk
    return cpu * 1000 / n, memory / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--jobs', type=int, default=50000)
    parser.add_argument('--chunk', type=int, default=200)
    parser.add_argument('--reps', type=int, default=3)
    a = parser.parse_args()
    rows = [
        ('EVALSHA and its arguments only', floor_script(0, hset=False), floor_args, True),
        ('+ one HSET of 11 fields', floor_script(0), floor_args, True),
        ('+ 1 sorted-set entry (dispatch queue)', floor_script(1), floor_args, True),
        ('+ 1 more entry (state:PENDING), a list push and an event', floor_script(
            2, event=True, id_list=True), floor_args, True),
        ('+ 2 more entries, a list push and an event per call', floor_script(3, event=True,
                                                                   id_list=True),
         floor_args, True),
        ('submit.lua', submit_script(), submit_args, True),
        ('HSET + 1 entry, AOF off', floor_script(1), floor_args, False),
        ('submit.lua, AOF off', submit_script(), submit_args, False),
    ]
    for name, script, make_args, aof in rows:
        runs = sorted(measure(script, make_args, a.jobs, a.chunk, aof) for _ in range(a.reps))
        mid = runs[len(runs) // 2]
        print('%-52s %5.1f us Redis CPU per job (median of %d), %4.0f bytes per job'
              % (name, mid[0], a.reps, mid[1]), flush=True)


if __name__ == '__main__':
    main()
