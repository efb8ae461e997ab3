#!/usr/bin/python3
"""Streams sin(t) through the bundled sine_rnn model, which predicts cos(t).

  sine_stream.py [--server 127.0.0.1:50051] [--steps 100] [--chunk 10]
                 [--tls-ca ca.pem [--tls-cert c.pem --tls-key c.key]]
                 [--token-file FILE]

Half-way it drops the session object and resumes the session on a new one
with its token, as a client that lost its connection would. Each chunk is
sent exactly once: a chunk whose answer is lost (server restart, network) is
resent from the same position and answered again, not applied twice.
"""
import argparse
import math

import numpy as np

import rnnserve_client as rc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--model", default="sine_rnn")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--tls-ca")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--token-file", help="file holding a bearer token")
    args = parser.parse_args()

    tls = None
    if args.tls_ca or args.tls_cert:
        tls = rc.TlsConfig(ca=args.tls_ca, cert=args.tls_cert,
                           key=args.tls_key)
    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    client = rc.Client(args.server, tls=tls, token=token)

    t = np.arange(args.steps, dtype=np.float32) * np.float32(math.pi / 10)
    x = np.sin(t).reshape(-1, 1)  # [steps, input_size = 1]
    chunks = [x[i:i + args.chunk] for i in range(0, args.steps, args.chunk)]
    half = len(chunks) // 2

    outputs = []
    session = client.session(args.model)
    for y in session.stream(chunks[:half]):
        outputs.append(y)
    session.close()  # The stream goes; the session stays on the server.

    with client.session(args.model, token=session.token) as resumed:
        print(f"resumed the session at step {resumed.position}")
        for y in resumed.stream(chunks[half:]):
            outputs.append(y)
        print(f"{resumed.position} steps; {resumed.retries} retries, "
              f"{resumed.replays} replayed answers")
    # Leaving the with-block ended the session.

    y = np.concatenate(outputs).reshape(-1)
    for k in range(0, args.steps, max(1, args.steps // 10)):
        print(f"t={t[k]:6.3f}  sin={x[k, 0]:+.4f}  predicted cos={y[k]:+.4f}"
              f"  cos={math.cos(t[k]):+.4f}")
    mse = float(np.mean((y - np.cos(t)) ** 2))
    print(f"MSE against cos(t): {mse:.4f}")
    client.close()


if __name__ == "__main__":
    main()
