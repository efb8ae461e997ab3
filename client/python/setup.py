"""Build hook: generates the gRPC modules of rnnserve_client from the
project's proto at build time (they are not committed).

The proto is found in, first match wins:
  1. $RNNSERVE_PROTO_DIR (a folder holding rnnserve/v1/inference.proto);
  2. ./proto (a copy, e.g. in an sdist);
  3. ../../proto (the repository's, when building from client/python).
protoc and grpc_python_plugin are the system's ($PROTOC and
$GRPC_PYTHON_PLUGIN override them): Debian's python3-grpc-tools bundles a
protoc too old for proto3 `optional`.
"""
import os
import re
import shutil
import subprocess
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join("rnnserve", "v1", "inference.proto")


def proto_dir():
    candidates = [os.environ.get("RNNSERVE_PROTO_DIR"),
                  os.path.join(HERE, "proto"),
                  os.path.join(HERE, "..", "..", "proto")]
    for d in candidates:
        if d and os.path.isfile(os.path.join(d, PROTO)):
            return os.path.abspath(d)
    raise SystemExit(
        f"rnnserve_client: {PROTO} not found in $RNNSERVE_PROTO_DIR, ./proto "
        "or ../../proto; set RNNSERVE_PROTO_DIR to the repository's proto/")


def tool(env, name, package):
    path = os.environ.get(env) or shutil.which(name)
    if not path:
        raise SystemExit(f"rnnserve_client: {name} not found (Debian package "
                         f"{package}; or set ${env})")
    return path


def generate(out):
    """Writes _pb/inference_pb2.py and _pb/inference_pb2_grpc.py in `out`.
    The proto keeps its name (rnnserve/v1/inference.proto); only the gRPC
    module's import of its messages is made relative."""
    protoc = tool("PROTOC", "protoc", "protobuf-compiler")
    plugin = tool("GRPC_PYTHON_PLUGIN", "grpc_python_plugin",
                  "protobuf-compiler-grpc")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([protoc, f"-I{proto_dir()}", f"--python_out={tmp}",
                        f"--grpc_python_out={tmp}",
                        f"--plugin=protoc-gen-grpc_python={plugin}", PROTO],
                       check=True)
        target = os.path.join(out, "rnnserve_client", "_pb")
        os.makedirs(target, exist_ok=True)
        made = os.path.join(tmp, "rnnserve", "v1")
        shutil.copy(os.path.join(made, "inference_pb2.py"), target)
        with open(os.path.join(made, "inference_pb2_grpc.py")) as f:
            text = f.read()
        text, n = re.subn(r"^from rnnserve\.v1 import inference_pb2",
                          "from . import inference_pb2", text, flags=re.M)
        if n != 1:
            raise SystemExit("rnnserve_client: unexpected grpc_python_plugin "
                             "output (import of inference_pb2 not found)")
        with open(os.path.join(target, "inference_pb2_grpc.py"), "w") as f:
            f.write(text)
        with open(os.path.join(target, "__init__.py"), "w") as f:
            f.write('"""Generated at build time from '
                    'proto/rnnserve/v1/inference.proto."""\n')


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        generate(self.build_lib)


setup(cmdclass={"build_py": BuildWithStubs})
