#!/usr/bin/env python3
"""Checks the layer rules on the #include lines of every tracked C++ file.

The rules (docs and README state them too):
  - gRPC (grpcpp/, grpc/, grpc++/) and protobuf (google/protobuf/, *.pb.h)
    only in server/service/ and client/, and in the trees that test or drive
    them: tests/, tools/, fuzz/, bench/.
  - oneDNN (dnnl.hpp, dnnl.h, dnnl_*.h, oneapi/dnnl/) only in server/engine/
    and in its unit tests, tests/engine/, which test private engine parts
    (the call context's workspace).
  - prometheus-cpp (prometheus/) only in server/metrics/ and tests/metrics/.

A file breaks a rule by including such a header itself, or by including a
project header that brings one in, however deep (reported with the chain).
Each violation is printed as file:line; the exit status is 1 if there is
any. `--self-test` checks the checker on a made-up tree.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

SOURCE_SUFFIXES = (".cc", ".h", ".cpp", ".hpp", ".c", ".cxx", ".hh", ".inc")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')

TEST_TREES = ("tests/", "tools/", "fuzz/", "bench/")
# (library, does an include path belong to it, where it may be included)
RULES = [
    ("gRPC",
     lambda p: p.startswith(("grpcpp/", "grpc/", "grpc++/"))
     or p.endswith(".grpc.pb.h"),
     ("server/service/", "client/") + TEST_TREES),
    ("protobuf",
     lambda p: p.startswith("google/protobuf/") or p.endswith(".pb.h"),
     ("server/service/", "client/") + TEST_TREES),
    ("oneDNN",
     lambda p: p.startswith("oneapi/dnnl/") or p in ("dnnl.hpp", "dnnl.h")
     or re.fullmatch(r"dnnl_[a-z0-9_]+\.(h|hpp)", p) is not None,
     ("server/engine/", "tests/engine/")),
    ("prometheus-cpp",
     lambda p: p.startswith("prometheus/"),
     ("server/metrics/", "tests/metrics/")),
]


def tracked_sources(root):
    """Every C++ file git tracks under root (every one on disk outside
    build/ when root is not a git work tree)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True,
                             capture_output=True).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames
                           if not d.startswith(".") and d != "build"]
            for name in filenames:
                path = os.path.join(dirpath, name)
                files.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(f for f in files if f.endswith(SOURCE_SUFFIXES)
                  and os.path.isfile(os.path.join(root, f)))


def read_includes(root, path):
    """(line number, include path, is quoted) for each #include of path."""
    result = []
    with open(os.path.join(root, path), encoding="utf-8",
              errors="replace") as f:
        for number, line in enumerate(f, 1):
            match = INCLUDE.match(line)
            if match:
                result.append((number, match.group(2), match.group(1) == '"'))
    return result


def check(root):
    """The violations under root, as printable lines."""
    files = tracked_sources(root)
    known = set(files)
    includes = {f: read_includes(root, f) for f in files}

    # For each file, the libraries it brings in: library -> the chain of
    # (file, line, include) that reaches the library's header.
    brought = {}

    def libraries(path, visiting):
        if path in brought:
            return brought[path]
        found = {}
        visiting.add(path)
        for number, include, quoted in includes[path]:
            for name, belongs, _ in RULES:
                if belongs(include) and name not in found:
                    found[name] = [(path, number, include)]
            if quoted and include in known and include not in visiting:
                for name, chain in libraries(include, visiting).items():
                    if name not in found:
                        found[name] = [(path, number, include)] + chain
        visiting.discard(path)
        brought[path] = found
        return found

    violations = []
    for path in files:
        found = libraries(path, set())
        for name, _, allowed in RULES:
            if name not in found or path.startswith(allowed):
                continue
            chain = found[name]
            first_path, number, include = chain[0]
            text = f"{path}:{number}: includes {include}, a {name} header"
            if len(chain) > 1:
                last_path, last_number, last_include = chain[-1]
                text = (f"{path}:{number}: includes {include}, which brings "
                        f"in {name} ({last_path}:{last_number} includes "
                        f"{last_include})")
            where = ", ".join(a.rstrip("/") for a in allowed)
            violations.append(f"{text}; {name} belongs only in {where}")
    return violations


def self_test():
    """The checker must flag made-up violations, each with file:line, and
    pass the allowed includes."""
    files = {
        "server/engine/e.h": '#include "dnnl.hpp"\n',
        "server/engine/e.cc": '#include "server/engine/e.h"\n',
        "server/runtime/r.cc":
            '#include <vector>\n#include "server/engine/e.h"\n',
        "server/model/m.cc": '// x\n#include <grpcpp/grpcpp.h>\n',
        "server/sessions/s.h": '  #  include "rnnserve/v1/inference.pb.h"\n',
        "server/common/c.cc": '#include "oneapi/dnnl/dnnl.hpp"\n',
        "server/batching/b.cc": '#include "prometheus/counter.h"\n',
        "server/metrics/ok.cc": '#include "prometheus/counter.h"\n',
        "server/service/ok.cc": '#include <grpcpp/grpcpp.h>\n',
        "tests/metrics/ok.cc": '#include "prometheus/family.h"\n',
        "tests/model/ok.cc": '#include "google/protobuf/message.h"\n',
        "client/ok.cc": '#include "grpc/health/v1/health.grpc.pb.h"\n',
        "tests/engine/ok.cc": '#include "server/engine/e.h"\n',
        "tests/model/bad.cc": '#include "dnnl.hpp"\n',
    }
    want = {
        "server/runtime/r.cc:2:", "server/model/m.cc:2:",
        "server/sessions/s.h:1:", "server/common/c.cc:1:",
        "server/batching/b.cc:1:", "tests/model/bad.cc:1:",
    }
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)),
                        exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        violations = check(root)
    got = {v.split(" ", 1)[0] for v in violations}
    for v in violations:
        print(v)
    if got != want:
        print(f"self-test FAILED: flagged {sorted(got)}, "
              f"expected {sorted(want)}")
        return 1
    print(f"self-test passed: {len(want)} made-up violations flagged")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=".",
                        help="repository root (default: current folder)")
    parser.add_argument("--self-test", action="store_true",
                        help="check the checker on a made-up tree")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    violations = check(args.root)
    for v in violations:
        print(v)
    if violations:
        print(f"{len(violations)} layer violation(s)")
        return 1
    print(f"layer rules hold in {len(tracked_sources(args.root))} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
