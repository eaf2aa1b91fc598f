#!/usr/bin/env python3
"""Opens N idle TLS 1.3 connections to a server for bench/compare's
"RSS per idle TLS connection" rows, then waits to be killed.

Usage: tls_idle.py PORT N fsproto|http

Each connection finishes its handshake (ALPN fsproto/1 or http/1.1); with
fsproto it also exchanges HELLO, as fsbench's plaintext idle clients do.
Prints "ready" once all are open. Trusts any certificate: it measures
memory, not trust."""

import socket
import ssl
import struct
import sys
import time


def main():
    port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["fsproto/1" if mode == "fsproto" else "http/1.1"])
    # HELLO: magic, version 1, opcode HELLO, flags, id 0, payload length;
    # then version, reserved, max_payload, max_inflight, caps, agent.
    agent = b"tls_idle/1"
    payload = struct.pack(">HHIIQ", 1, 0, 1 << 20, 0, 0) + agent
    hello = struct.pack(">BBBBII", 0xF5, 1, 1, 0, 0, len(payload)) + payload
    conns = []
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                            server_hostname="localhost")
        if mode == "fsproto":
            s.sendall(hello)
            hdr = b""
            while len(hdr) < 12:
                hdr += s.recv(12 - len(hdr))
            length = struct.unpack(">I", hdr[8:12])[0]
            body = b""
            while len(body) < length:
                body += s.recv(length - len(body))
        conns.append(s)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
