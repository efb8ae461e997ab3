#!/usr/bin/python3
"""The deployment files wire rnnserve's replicas to one Redis session store.

  check_session_store.py --deploy deploy [--redis-server redis-server]

compose.yaml: two or more rnnserve replicas, all with the same
--session-store (a redis:// URL naming the compose service that runs
redis-server) and the same --max-sessions and --max-sessions-per-token (in
Redis mode they bound the whole cluster); every replica behind nginx
(nginx/nginx.conf) and scraped by Prometheus (prometheus/prometheus.yml).

k8s/: the Deployment's --session-store names redis.yaml's Service and port;
its --session-store-password-file lies in a volume of the Secret whose
password Redis requires; no probe asks for the rnnserve.v1.SessionStore
health service (a Redis outage must not take every replica out of the
Service).

Both Redis set-ups: maxmemory set, maxmemory-policy noeviction, appendonly
yes. With --redis-server, each set-up's options are also loaded by a real
redis-server on a free loopback port and read back with CONFIG GET, so that
Redis itself accepts them.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import yaml

SESSION_FLAGS = ("session-store", "max-sessions", "max-sessions-per-token")
STORE_HEALTH = "rnnserve.v1.SessionStore"
errors = []


def error(message):
    errors.append(message)


def flags(args):
    """--name=value arguments as a dict (--name alone maps to "")."""
    out = {}
    for a in args:
        if isinstance(a, str) and a.startswith("--"):
            name, _, value = a[2:].partition("=")
            out[name] = value
    return out


def redis_url(url, where):
    m = re.fullmatch(r"redis://([^:/]+)(?::(\d+))?(?:/(\d+))?", url or "")
    if not m:
        error(f"{where}: --session-store is not redis://HOST:PORT[/DB]: "
              f"{url!r}")
        return None, None
    return m.group(1), int(m.group(2) or 6379)


def options_of_args(args):
    """Redis options given on redis-server's command line, lower-case."""
    out, name = {}, None
    for a in args:
        if a.startswith("--"):
            name = a[2:].lower()
            out[name] = ""
        elif name is not None:
            out[name] = (out[name] + " " + a).strip()
    return out


def options_of_conf(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            out[name.lower()] = value.strip()
    return out


def memory_bytes(text):
    """A Redis memory size (256mb, 1gb, 1000000) in bytes."""
    m = re.fullmatch(r"(\d+)(b|k|kb|m|mb|g|gb)?", text.strip().lower())
    if not m:
        return None
    units = {None: 1, "b": 1, "k": 1000, "kb": 1024, "m": 10**6,
             "mb": 1024**2, "g": 10**9, "gb": 1024**3}
    return int(m.group(1)) * units[m.group(2)]


def kube_quantity(text):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|k|M|G)?", str(text))
    units = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3,
             "k": 1000, "M": 10**6, "G": 10**9}
    return int(m.group(1)) * units[m.group(2)] if m else None


def check_redis_options(options, where):
    if not memory_bytes(options.get("maxmemory", "0") or "0"):
        error(f"{where}: no maxmemory (or not a size): Redis would grow "
              f"until the node or container runs out of memory")
    if options.get("maxmemory-policy") != "noeviction":
        error(f"{where}: maxmemory-policy is "
              f"{options.get('maxmemory-policy')!r}, not noeviction: a full "
              f"Redis would evict live sessions")
    if options.get("appendonly", "").strip('"') != "yes":
        error(f"{where}: appendonly is not yes: a Redis restart would lose "
              f"every session")


def check_compose(deploy):
    path = os.path.join(deploy, "compose.yaml")
    services = yaml.safe_load(open(path, encoding="utf-8"))["services"]
    replicas = {n: s for n, s in services.items()
                if s.get("image", "").split(":")[0] == "rnnserve"}
    if len(replicas) < 2:
        error(f"{path}: {len(replicas)} rnnserve replica(s), want 2 or more")
    redis_services = {n: s for n, s in services.items()
                      if "redis-server" in (s.get("command") or [])}
    seen = {}
    for name, service in replicas.items():
        f = flags(service.get("command", []))
        for flag in SESSION_FLAGS:
            seen.setdefault(flag, set()).add(f.get(flag))
        host, _ = redis_url(f.get("session-store"), f"{path} {name}")
        if host is not None and host not in redis_services:
            error(f"{path}: {name}: --session-store names {host}, which is "
                  f"no service running redis-server")
    for flag, values in seen.items():
        if len(values) > 1:
            error(f"{path}: the replicas differ in --{flag}: "
                  f"{sorted(map(str, values))}; in Redis mode every replica "
                  f"must be given the same value")
    redis_args = []
    for name, service in redis_services.items():
        redis_args = [str(a) for a in service["command"]
                      if a != "redis-server"]
        check_redis_options(options_of_args(redis_args), f"{path} {name}")
        if service.get("ports"):
            error(f"{path}: {name} publishes its port, without a password")
    nginx = open(os.path.join(deploy, "nginx", "nginx.conf"),
                 encoding="utf-8").read()
    upstream = set(re.findall(r"^\s*server\s+([\w.-]+):50051\b", nginx, re.M))
    prometheus = yaml.safe_load(open(os.path.join(
        deploy, "prometheus", "prometheus.yml"), encoding="utf-8"))
    targets = {t for job in prometheus["scrape_configs"]
               if job["job_name"] == "rnnserve"
               for sc in job.get("static_configs", [])
               for t in sc.get("targets", [])}
    for name in replicas:
        if name not in upstream:
            error(f"nginx/nginx.conf: no `server {name}:50051` upstream")
        if f"{name}:8002" not in targets:
            error(f"prometheus/prometheus.yml: job rnnserve does not scrape "
                  f"{name}:8002")
    for name in upstream - set(replicas):
        error(f"nginx/nginx.conf: upstream {name} is no rnnserve replica")
    return redis_args


def check_k8s(deploy):
    k8s = os.path.join(deploy, "k8s")
    docs = list(yaml.safe_load_all(open(os.path.join(k8s, "redis.yaml"),
                                        encoding="utf-8")))
    kinds = {d["kind"]: d for d in docs if d}
    for kind in ("ConfigMap", "StatefulSet", "Service"):
        if kind not in kinds:
            error(f"k8s/redis.yaml: no {kind}")
            return ""
    conf = kinds["ConfigMap"]["data"]["redis.conf"]
    check_redis_options(options_of_conf(conf), "k8s/redis.yaml redis.conf")
    redis_pod = kinds["StatefulSet"]["spec"]["template"]["spec"]
    redis_box = redis_pod["containers"][0]
    limit = kube_quantity(redis_box.get("resources", {}).get(
        "limits", {}).get("memory"))
    maxmemory = memory_bytes(options_of_conf(conf).get("maxmemory", "0"))
    if not limit or not maxmemory or limit < 1.5 * maxmemory:
        error("k8s/redis.yaml: the Redis container's memory limit must be "
              "well above maxmemory (at least 1.5 times)")
    redis_secrets = {v["secret"]["secretName"]
                     for v in redis_pod.get("volumes", []) if "secret" in v}
    if "requirepass" not in " ".join(redis_box.get("command", []) +
                                     redis_box.get("args", [])) + conf:
        error("k8s/redis.yaml: Redis requires no password")
    if not kinds["StatefulSet"]["spec"].get("volumeClaimTemplates"):
        error("k8s/redis.yaml: no PersistentVolumeClaim for the append-only "
              "file")
    service = kinds["Service"]
    ports = {p["port"] for p in service["spec"]["ports"]}

    path = os.path.join(k8s, "deployment.yaml")
    pod = yaml.safe_load(open(path, encoding="utf-8"))["spec"]["template"][
        "spec"]
    box = next(c for c in pod["containers"] if c["name"] == "rnnserve")
    f = flags(box.get("args", []))
    host, port = redis_url(f.get("session-store"), path)
    if host is not None and (host != service["metadata"]["name"] or
                             port not in ports):
        error(f"{path}: --session-store names {host}:{port}, not redis.yaml's "
              f"Service {service['metadata']['name']}:{sorted(ports)}")
    password = f.get("session-store-password-file")
    if not password:
        error(f"{path}: no --session-store-password-file")
    else:
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mount = next((m for m in box.get("volumeMounts", [])
                      if password.startswith(m["mountPath"].rstrip("/") + "/")),
                     None)
        secret = volumes.get(mount["name"], {}).get("secret") if mount else None
        if secret is None:
            error(f"{path}: --session-store-password-file {password} is in no "
                  f"Secret volume")
        elif secret["secretName"] not in redis_secrets:
            error(f"{path}: the password comes from Secret "
                  f"{secret['secretName']}, Redis takes it from "
                  f"{sorted(redis_secrets)}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc = (box.get(probe) or {}).get("grpc") or {}
        if grpc.get("service") == STORE_HEALTH:
            error(f"{path}: {probe} asks for {STORE_HEALTH}: a Redis outage "
                  f"would take every replica out of the Service")
    return conf


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_in_redis(binary, where, conf_text, args):
    """Starts redis-server with `conf_text` and `args` (its data in a
    throwaway folder), reads the options back, and stops it."""
    with tempfile.TemporaryDirectory() as work:
        conf = re.sub(r"^dir .*$", f"dir {work}", conf_text, flags=re.M)
        with open(os.path.join(work, "redis.conf"), "w") as f:
            f.write(conf)
        port = free_port()
        command = [binary, os.path.join(work, "redis.conf"), *args,
                   "--port", str(port), "--bind", "127.0.0.1", "--dir", work,
                   "--daemonize", "no"]
        server = subprocess.Popen(command, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            got = None
            for _ in range(100):
                if server.poll() is not None:
                    break
                try:
                    got = read_config(port)
                    break
                except OSError:
                    time.sleep(0.1)
            if got is None:
                server.kill()
                error(f"{where}: redis-server did not start with these "
                      f"options:\n{server.communicate()[0]}")
                return
            check_redis_options(got, f"{where} (as redis-server read it)")
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)


def read_config(port):
    """CONFIG GET of the options checked, over a plain RESP connection."""
    out = {}
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for name in ("maxmemory", "maxmemory-policy", "appendonly"):
            words = ["CONFIG", "GET", name]
            s.sendall(("*%d\r\n" % len(words) + "".join(
                "$%d\r\n%s\r\n" % (len(w), w) for w in words)).encode())
            reply = b""
            while reply.count(b"\r\n") < 5:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("closed")
                reply += chunk
            lines = reply.decode().split("\r\n")
            out[lines[2]] = lines[4]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--deploy", required=True)
    parser.add_argument("--redis-server")
    args = parser.parse_args()
    compose_args = check_compose(args.deploy)
    k8s_conf = check_k8s(args.deploy)
    if args.redis_server:
        load_in_redis(args.redis_server, "compose.yaml redis", "",
                      compose_args)
        load_in_redis(args.redis_server, "k8s/redis.yaml redis.conf",
                      k8s_conf, [])
    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    if errors:
        return 1
    print("compose and k8s: every replica on one Redis session store, with "
          "maxmemory, noeviction and appendonly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
