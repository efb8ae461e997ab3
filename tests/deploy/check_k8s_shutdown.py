#!/usr/bin/python3
"""deploy/k8s/deployment.yaml stops pods without refusing routed calls.

  check_k8s_shutdown.py --deployment deploy/k8s/deployment.yaml --rnnserve BIN

The rnnserve container has a preStop hook that sleeps as long as its
--drain-delay (so the pod leaves the Service's endpoints while it still
serves), and terminationGracePeriodSeconds exceeds preStop + --drain-delay +
--shutdown-grace, so the kubelet never kills a pod in its grace. The
defaults come from rnnserve --help; check_deploy_flags.py checks that every
flag the container passes exists.
"""
import argparse
import re
import subprocess
import sys

import yaml


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def seconds(text):
    """A Go-style duration as rnnserve's flags take it: 5s, 1m30s, 250ms."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text)
    if text != "0" and "".join(a + b for a, b in parts) != text:
        fail(f"cannot read the duration '{text}'")
    return sum(float(a) * units[b] for a, b in parts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--rnnserve", required=True)
    args = parser.parse_args()
    with open(args.deployment) as f:
        pod = yaml.safe_load(f)["spec"]["template"]["spec"]
    container = next((c for c in pod["containers"] if c["name"] == "rnnserve"),
                     None)
    if container is None:
        fail("no container named rnnserve")
    flags = dict(a[2:].split("=", 1) for a in container.get("args", [])
                 if a.startswith("--") and "=" in a)
    help_text = subprocess.run([args.rnnserve, "--help"], check=True,
                               capture_output=True, text=True,
                               timeout=60).stdout
    # Defaults as rnnserve --help states them.
    defaults = dict(re.findall(r"--(drain-delay|shutdown-grace) \(duration, "
                               r"default: ([^)]+)\)", help_text))
    drain = seconds(flags.get("drain-delay", defaults["drain-delay"]))
    grace = seconds(flags.get("shutdown-grace", defaults["shutdown-grace"]))
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        fail("the rnnserve container has no preStop hook")
    if "sleep" in pre_stop:
        sleep = float(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop.get("exec", {}).get("command", [])
        if len(command) != 2 or command[0] != "sleep":
            fail(f"preStop is not a plain sleep: {pre_stop}")
        sleep = seconds(command[1] if command[1][-1].isalpha()
                        else command[1] + "s")
    if sleep != drain:
        fail(f"preStop sleeps {sleep}s but --drain-delay is {drain}s")
    period = pod.get("terminationGracePeriodSeconds", 30)
    if period <= sleep + drain + grace:
        fail(f"terminationGracePeriodSeconds {period} does not exceed preStop "
             f"{sleep}s + drain delay {drain}s + grace {grace}s")
    print(f"k8s: preStop {sleep:g}s + --drain-delay {drain:g}s + "
          f"--shutdown-grace {grace:g}s < terminationGracePeriodSeconds "
          f"{period}")


if __name__ == "__main__":
    main()
