#!/usr/bin/python3
"""Every rnnserve flag the deployment files pass is one rnnserve has.

  check_deploy_flags.py --rnnserve BIN --deployment deploy/k8s/deployment.yaml \
      --compose deploy/compose.yaml --dockerfile deploy/Dockerfile

The flags are those of the Deployment's rnnserve container (args), of every
compose service that runs the rnnserve image (command), and of the
Dockerfile's default CMD; each must be listed by `rnnserve --help`. A
misspelt or not yet existing flag would stop the server at start-up, in a
cluster rather than here.
"""
import argparse
import json
import re
import subprocess
import sys

import yaml


def flag_names(args):
    """The flag names of an argument list: `--name=value` or `--name`."""
    return [a[2:].split("=", 1)[0] for a in args
            if isinstance(a, str) and a.startswith("--")]


def deployment_flags(path):
    with open(path, encoding="utf-8") as f:
        pod = yaml.safe_load(f)["spec"]["template"]["spec"]
    for c in pod["containers"]:
        if c["name"] == "rnnserve":
            return flag_names(c.get("command", []) + c.get("args", []))
    raise SystemExit(f"{path}: no container named rnnserve")


def compose_flags(path):
    """(service, flags) for every service running the rnnserve image."""
    with open(path, encoding="utf-8") as f:
        services = yaml.safe_load(f)["services"]
    out = []
    for name, service in services.items():
        image = service.get("image", "")
        dockerfile = (service.get("build") or {}).get("dockerfile", "")
        if image.split(":")[0] == "rnnserve" or \
                dockerfile.endswith("deploy/Dockerfile"):
            command = service.get("command", [])
            if isinstance(command, str):
                command = command.split()
            out.append((name, flag_names(command)))
    if not out:
        raise SystemExit(f"{path}: no service runs the rnnserve image")
    return out


def dockerfile_flags(path):
    """The flags of the Dockerfile's CMD (its exec form)."""
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    for line in text.splitlines():
        m = re.match(r"\s*CMD\s+(\[.*\])\s*$", line)
        if m:
            return flag_names(json.loads(m.group(1)))
    raise SystemExit(f"{path}: no CMD in exec form")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rnnserve", required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--compose", required=True)
    parser.add_argument("--dockerfile", required=True)
    args = parser.parse_args()
    help_text = subprocess.run([args.rnnserve, "--help"], check=True,
                               capture_output=True, text=True,
                               timeout=60).stdout
    known = set(re.findall(r"^\s*--([a-z0-9-]+) \(", help_text, re.M))
    if not known:
        raise SystemExit("rnnserve --help lists no flags")
    uses = [(args.deployment, deployment_flags(args.deployment)),
            (args.dockerfile, dockerfile_flags(args.dockerfile))]
    uses += [(f"{args.compose} service {name}", flags)
             for name, flags in compose_flags(args.compose)]
    errors = [f"{where} passes --{flag}, which rnnserve --help lacks"
              for where, flags in uses for flag in flags if flag not in known]
    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"{sum(len(f) for _, f in uses)} flags in {len(uses)} places, all "
          f"known to rnnserve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
