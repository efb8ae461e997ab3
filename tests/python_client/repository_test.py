#!/usr/bin/python3
"""The Python client's repository methods over real gRPC, against a
stand-in Repository service in this process (no rnnserve needed).

  repository_test.py --source DIR

Installs rnnserve_client as client_test.py does, then checks that
repository_index, load_model and unload_model send the admin token and not
the client's bearer token, turn the answers into RepositoryModel and
VersionStatus, and raise Unauthenticated for a refused token and
Unimplemented for a server without the service; and that ModelInfo carries
each version's state and draining sessions.
"""
import argparse
import os
import shutil
import sys
import tempfile
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from client_test import check, install_package  # noqa: E402

ADMIN = "admin-secret"


def stand_in(pb, pb_grpc, seen):
    """A Repository servicer that answers only the admin token and records
    every authorization header it gets."""

    def authorized(context):
        tokens = [v for k, v in context.invocation_metadata()
                  if k == "authorization"]
        seen.extend(tokens)
        if tokens != [f"Bearer {ADMIN}"]:
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "not an admin token")

    def model(name, unloaded=False):
        m = pb.RepositoryModel(name=name, unloaded_by_request=unloaded)
        m.versions.add(version="1", state=pb.VERSION_STATE_DRAINING,
                       sessions=2, reason="")
        m.versions.add(version="2", state=pb.VERSION_STATE_FAILED,
                       reason="config.json: bad hidden_size")
        return m

    class Servicer(pb_grpc.RepositoryServicer):
        def RepositoryIndex(self, request, context):
            authorized(context)
            return pb.RepositoryIndexResponse(models=[model("sine")])

        def LoadModel(self, request, context):
            authorized(context)
            return pb.LoadModelResponse(model=model(request.model))

        def UnloadModel(self, request, context):
            authorized(context)
            return pb.UnloadModelResponse(model=model(request.model, True))

    return Servicer()


def start(servicer=None, pb_grpc=None):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    if servicer is not None:
        pb_grpc.add_RepositoryServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def check_calls(rc, pb, pb_grpc):
    seen = []
    server, address = start(stand_in(pb, pb_grpc, seen), pb_grpc)
    try:
        client = rc.Client(address, token="inference-token", timeout=10)
        index = client.repository_index(ADMIN)
        check(index == [rc.RepositoryModel(
            name="sine", unloaded_by_request=False, versions=[
                rc.VersionStatus("1", "draining", 2, ""),
                rc.VersionStatus("2", "failed", 0,
                                 "config.json: bad hidden_size")])],
              f"repository_index: {index}")
        check(seen == [f"Bearer {ADMIN}"],
              f"the admin token alone must be sent, got {seen}")
        loaded = client.load_model("fashion_lstm", ADMIN)
        check(loaded.name == "fashion_lstm" and not loaded.unloaded_by_request,
              f"load_model: {loaded}")
        unloaded = client.unload_model("fashion_lstm", ADMIN)
        check(unloaded.unloaded_by_request
              and unloaded.versions[0].state == "draining"
              and unloaded.versions[0].sessions == 2,
              f"unload_model: {unloaded}")
        try:
            client.load_model("sine", "inference-token")
            check(False, "a refused admin token must raise Unauthenticated")
        except rc.Unauthenticated as e:
            check("not an admin token" in e.details, f"details: {e.details}")
        try:
            client.repository_index("")
            check(False, "an empty admin token must be refused")
        except ValueError as e:
            check("admin_token" in str(e), str(e))
        client.close()
    finally:
        server.stop(None)
    print("calls: admin token sent alone; index, load and unload as "
          "dataclasses; a refused token is Unauthenticated")


def check_without_service(rc):
    server, address = start()
    try:
        client = rc.Client(address, timeout=10)
        try:
            client.unload_model("sine", ADMIN)
            check(False, "a server without the service must refuse")
        except rc.Unimplemented as e:
            check(e.code == grpc.StatusCode.UNIMPLEMENTED, f"code: {e.code}")
        client.close()
    finally:
        server.stop(None)
    print("unimplemented: a server without the service raises Unimplemented")


def check_model_info(rc, pb):
    m = pb.ModelInfo(name="sine", version="2", state=pb.VERSION_STATE_READY)
    m.versions.add(name="sine", version="1", state=pb.VERSION_STATE_DRAINING,
                   sessions=3)
    m.versions.add(name="sine", version="2", state=pb.VERSION_STATE_READY)
    info = rc.ModelInfo.from_proto(m)
    check(info.state == "ready" and
          [(v.version, v.state, v.sessions) for v in info.versions] ==
          [("1", "draining", 3), ("2", "ready", 0)],
          f"ModelInfo: {info}")
    print("model_info: versions with their states and draining sessions")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rnnserve_repository_client_")
    try:
        install_package(args.source, work)
        import rnnserve_client as rc
        from rnnserve_client._pb import inference_pb2 as pb
        from rnnserve_client._pb import inference_pb2_grpc as pb_grpc
        check_calls(rc, pb, pb_grpc)
        check_without_service(rc)
        check_model_info(rc, pb)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
