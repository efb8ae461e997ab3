"""Debian's nginx as a gRPC proxy in front of rnnserve replicas, for tests.

nginx listens for cleartext HTTP/2 (as gRPC clients speak it) on a loopback
port and spreads the calls over the replicas round-robin, each call (each
HTTP/2 stream) on its own: consecutive calls of one client land on different
replicas. Its files live in the test's work folder; it runs in the
foreground as a child of the test, which stops it.
"""
import os
import shutil

from live import fail, wait_until

CONFIG = """\
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/client_body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  upstream rnnserve {{
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port} http2;
    http2_max_concurrent_streams 2048;
    client_max_body_size 64m;
    location / {{
      grpc_pass grpc://rnnserve;
      grpc_read_timeout 300s;
      grpc_send_timeout 300s;
      # A replica that refuses the connection (killed, restarting) is
      # skipped; a call already sent to one is not sent again.
      grpc_next_upstream error;
    }}
  }}
}}
"""


def start_nginx(processes, work, port, upstream_ports):
    """Starts nginx on 127.0.0.1:`port` in front of the replicas on
    `upstream_ports`, and waits until it accepts connections."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        fail("nginx not found (Debian package nginx)")
    servers = "\n".join(
        f"    server 127.0.0.1:{p} max_fails=0;" for p in upstream_ports)
    config = os.path.join(work, "nginx.conf")
    with open(config, "w") as f:
        # Workers of a root master would run as nobody, who cannot write
        # the temporary folders under the test's private work folder.
        f.write(CONFIG.format(user="user root;" if os.geteuid() == 0 else "",
                              work=work, port=port, servers=servers))
    log = os.path.join(work, "nginx.log")
    processes.start("nginx", [binary, "-c", config, "-e",
                              os.path.join(work, "nginx-error.log")], log)

    def listening():
        import socket
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_until("nginx to listen", listening, 30, processes)
    return f"127.0.0.1:{port}"
