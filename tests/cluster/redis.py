"""A real redis-server for the cluster tests and the session store bench.

Started on a free loopback port in a folder of its own, in the foreground
as a child of the test; it can be paused (SIGSTOP: it keeps its sockets but
answers nothing, as a stalled server does), killed and started again on the
same port with the same folder (so that an append-only file, when the test
asked for one, is read back). No persistence unless asked for.
"""
import os
import signal
import socket
import subprocess
import time

from live import fail, free_port

START_TIMEOUT = 10


class RedisServer:
    """One redis-server. Not thread-safe: the test's main thread drives it.

    `extra` are more command-line words, e.g. ["--appendonly", "yes",
    "--appendfsync", "always"] (they override the defaults: no snapshots,
    no append-only file). `prefix` goes before the binary, e.g.
    ["taskset", "-c", "1"] to pin it."""

    def __init__(self, work, extra=(), name="redis", prefix=()):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.extra = list(extra)
        self.prefix = list(prefix)
        self.process = None
        self.starts = 0
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        binary = "/usr/bin/redis-server"
        if not os.path.exists(binary):
            fail("redis-server not found (Debian package redis-server)")
        self.starts += 1
        log = open(os.path.join(self.dir, f"redis{self.starts}.log"), "w")
        self.process = subprocess.Popen(
            [*self.prefix, binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--protected-mode", "no", *self.extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail(f"redis-server exited with {self.process.returncode} at "
                     f"start; see {self.dir}")
            if self.ping():
                return
            time.sleep(0.05)
        fail(f"redis-server did not answer PING on port {self.port} within "
             f"{START_TIMEOUT} s")

    def ping(self, timeout=1.0):
        """True when the server answers PING now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=timeout) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words, timeout=5.0):
        """Sends one command (RESP array of bulk strings); the first line of
        the reply, decoded. Enough for DBSIZE, FLUSHALL and the like."""
        parts = [f"*{len(words)}\r\n".encode()]
        for w in words:
            b = str(w).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=timeout) as s:
            s.sendall(b"".join(parts))
            return s.recv(4096).split(b"\r\n")[0].decode()

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def kill(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)  # A paused one must die too.
        self.process.kill()
        self.process.wait(timeout=10)

    def restart(self):
        """SIGKILL, then the same port and folder again."""
        self.kill()
        self.start()

    def stop(self):
        self.kill()
