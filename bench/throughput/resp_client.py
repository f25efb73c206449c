"""A minimal Redis client for the measurement scripts here (cas_phase_cost.py,
module_spike/module_cost.py): commands in RESP, replies as bytes, ints-as-bytes and lists; an
error reply raises. Python's standard library only, since Debian's python3 has no redis module
and these scripts need none of one's features."""
import socket
import time


class ServerExited(Exception):
    pass


class Client:
    def __init__(self, port, server=None, timeout_s=60):
        """Connects to 127.0.0.1:`port`, retrying while the server starts; `server` (a Popen)
        stops the retries with ServerExited as soon as it has exited."""
        deadline = time.time() + timeout_s
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if server is not None and server.poll() is not None:
                    raise ServerExited("redis-server exited with %d" % server.returncode)
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.reader = self.sock.makefile("rb")

    def read(self):
        line = self.reader.readline()
        kind = line[:1]
        if kind == b"-":
            raise RuntimeError(line[1:].strip().decode())
        if kind in (b"+", b":"):
            return line[1:].strip()
        if kind == b"$":
            n = int(line[1:])
            return None if n < 0 else self.reader.read(n + 2)[:-2]
        return [self.read() for _ in range(int(line[1:]))]

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()
