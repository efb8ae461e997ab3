"""A loopback TCP proxy for plaintext gRPC that can lose one answer.

Armed, it closes the connection (both sides) at the first HTTP/2 DATA frame
the server sends, without forwarding it: the server has answered the call,
so it has applied and stored the chunk, but the client never sees the
answer. That is the failure the exactly-once rule is for.
"""
import socket
import struct
import threading

DATA = 0
HEADER = 9


class CutProxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.armed = False
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self):
        with self.lock:
            self.armed = True

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(
                    ("127.0.0.1", self.upstream_port), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._forward, args=(client, server),
                             daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client),
                             daemon=True).start()

    @staticmethod
    def _close(*sockets):
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _forward(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        self._close(source, sink)

    def _answers(self, server, client):
        """Server to client, frame by frame, so that a cut falls before a
        whole DATA frame."""
        buffer = b""
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                buffer += data
                while len(buffer) >= HEADER:
                    length = struct.unpack(">I", b"\0" + buffer[:3])[0]
                    if len(buffer) < HEADER + length:
                        break
                    kind = buffer[3]
                    with self.lock:
                        cut = self.armed and kind == DATA and length > 0
                        if cut:
                            self.armed = False
                            self.cuts += 1
                    if cut:
                        self._close(server, client)
                        return
                    client.sendall(buffer[:HEADER + length])
                    buffer = buffer[HEADER + length:]
        except OSError:
            pass
        self._close(server, client)

    def close(self):
        self.listener.close()
