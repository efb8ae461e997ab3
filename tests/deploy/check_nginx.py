#!/usr/bin/python3
"""deploy/nginx/nginx.conf is a configuration nginx accepts.

  check_nginx.py --nginx NGINX --config deploy/nginx/nginx.conf

Runs `nginx -t` on a copy that differs only where this machine must: the
upstream servers' host names (compose service names, unknown here) become
127.0.0.1, and the pid file and temporary folders move to a throwaway
folder, so that it runs without root. It also checks that the proxy passes
gRPC (grpc_pass) over cleartext HTTP/2 and balances round-robin (no hash,
ip_hash, least_conn or sticky directive: any replica serves any session).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

TEMP_PATHS = ("client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
              "uwsgi_temp_path", "scgi_temp_path")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nginx", required=True)
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    text = open(args.config, encoding="utf-8").read()
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    errors = []
    if not re.search(r"^\s*listen\s+\S+\s+http2\s*;|^\s*http2\s+on\s*;",
                     code, re.M):
        errors.append("no HTTP/2 listener (listen ... http2, or http2 on)")
    if not re.search(r"^\s*grpc_pass\s+grpc://", code, re.M):
        errors.append("no grpc_pass grpc://")
    for directive in ("hash", "ip_hash", "least_conn", "random", "sticky"):
        if re.search(rf"^\s*{directive}\b", code, re.M):
            errors.append(f"`{directive}` in the upstream: balance round-robin")
    servers = re.findall(r"^\s*server\s+([\w.-]+):\d+", code, re.M)
    if len(servers) < 2:
        errors.append(f"{len(servers)} upstream server(s), want 2 or more")
    with tempfile.TemporaryDirectory() as work:
        local = re.sub(r"^(\s*server\s+)[\w.-]+(:\d+)", r"\g<1>127.0.0.1\2",
                       text, flags=re.M)
        temp = "".join(f"  {d} {work}/{d};\n" for d in TEMP_PATHS)
        local, n = re.subn(r"^http\s*\{\n", lambda m: m.group(0) + temp,
                           local, count=1, flags=re.M)
        if n != 1:
            errors.append("no `http {` block")
        config = os.path.join(work, "nginx.conf")
        with open(config, "w", encoding="utf-8") as f:
            f.write(local)
        result = subprocess.run(
            [args.nginx, "-t", "-q", "-c", config, "-e", "stderr",
             "-g", f"pid {work}/nginx.pid;"],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            errors.append(f"nginx -t refuses it:\n{result.stdout}"
                          f"{result.stderr}")
    for e in errors:
        print(f"FAIL: {args.config}: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"{args.config}: nginx accepts it; gRPC over HTTP/2, round-robin "
          f"over {len(servers)} replicas")
    return 0


if __name__ == "__main__":
    sys.exit(main())
