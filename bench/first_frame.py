#!/usr/bin/env python3
"""Time to the first streamed SSE frame, over kept-alive HTTP/1.1 connections.

    first_frame.py [--n 300] [--warmup 30] [--model smart] NAME=URL [NAME=URL ...]

For every target it opens one connection and sends N streaming
POST /v1/chat/completions requests on it, one after another; each sample is the
time from just before the request is written to the arrival of the bytes that
complete the first `data:` line of the body. The rest of the answer is read to
its end (chunked, Content-Length or close-delimited) so the connection can be
reused. Targets are interleaved request by request, so slow drifts of the
machine hit every target alike.

Prints one JSON object per target:
    {"name": ..., "n": ..., "p50_us": ..., "p90_us": ..., "p99_us": ..., "mean_us": ...,
     "min_us": ..., "max_us": ..., "reconnects": ...}
Exit status 1 when a target does not answer 200 with an SSE `data:` frame.
Standard library only.
"""

import argparse
import json
import math
import socket
import sys
import time
from urllib.parse import urlsplit


class BenchError(Exception):
    pass


def percentile(sorted_values, q):
    """Nearest-rank percentile, q in (0, 100]."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


class Target:
    def __init__(self, name, url, body):
        self.name = name
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise BenchError(f"{name}: want http://HOST:PORT[/prefix], got {url!r}")
        self.host = parts.hostname
        self.port = parts.port
        prefix = parts.path.rstrip("/")
        path = prefix + "/v1/chat/completions" if not prefix.endswith("/v1") else prefix + "/chat/completions"
        self.request = (
            f"POST {path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "User-Agent: turnout-bench-first-frame\r\n"
            "Content-Type: application/json\r\n"
            "Accept: text/event-stream\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n"
        ).encode() + body
        self.sock = None
        self.buf = b""
        self.samples_ns = []
        self.reconnects = -1  # the first connect is not a reconnect

    # -- connection -------------------------------------------------------
    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.reconnects += 1

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed")
        return data

    # -- one request ------------------------------------------------------
    def one(self, record):
        if self.sock is None:
            self.connect()
        t0 = time.perf_counter_ns()
        self.sock.sendall(self.request)
        first_ns = None

        # Head.
        buf = self.buf
        while b"\r\n\r\n" not in buf:
            buf += self._recv()
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = int(headers["content-length"]) if "content-length" in headers else None
        close_after = headers.get("connection", "").lower() == "close" or (not chunked and length is None)

        # Body, decoded incrementally; the first complete `data:` line stops the clock.
        body = b""
        raw = rest
        done = False
        while True:
            if chunked:
                # Decode as many whole chunks as raw holds.
                while True:
                    eol = raw.find(b"\r\n")
                    if eol < 0:
                        break
                    size = int(raw[:eol].split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        # Last chunk, then optional trailers, then an empty line.
                        if raw[eol + 2 : eol + 4] == b"\r\n":
                            end = eol + 4
                        else:
                            end = raw.find(b"\r\n\r\n", eol + 2)
                            if end < 0:
                                break
                            end += 4
                        raw = raw[end:]
                        done = True
                        break
                    if len(raw) < eol + 2 + size + 2:
                        break
                    body += raw[eol + 2 : eol + 2 + size]
                    raw = raw[eol + 2 + size + 2 :]
            elif length is not None:
                take = min(length - len(body), len(raw))
                body += raw[:take]
                raw = raw[take:]
                done = len(body) >= length
            else:
                body += raw
                raw = b""

            if first_ns is None:
                idx = body.find(b"data:")
                if idx >= 0 and body.find(b"\n", idx) >= 0:
                    first_ns = time.perf_counter_ns()
            if done:
                break
            try:
                raw += self._recv()
            except ConnectionError:
                if chunked or length is not None:
                    raise
                break  # close-delimited body ended

        self.buf = raw
        if status != 200:
            raise BenchError(f"{self.name}: HTTP {status}: {body[:300]!r}")
        if first_ns is None:
            raise BenchError(f"{self.name}: no SSE data: frame in the answer: {body[:300]!r}")
        if close_after:
            self.close()
        if record:
            self.samples_ns.append(first_ns - t0)

    def summary(self):
        us = sorted(ns / 1000.0 for ns in self.samples_ns)
        return {
            "name": self.name,
            "n": len(us),
            "p50_us": round(percentile(us, 50), 1),
            "p90_us": round(percentile(us, 90), 1),
            "p99_us": round(percentile(us, 99), 1),
            "mean_us": round(sum(us) / len(us), 1) if us else float("nan"),
            "min_us": round(us[0], 1) if us else float("nan"),
            "max_us": round(us[-1], 1) if us else float("nan"),
            "reconnects": max(self.reconnects, 0),
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="measured requests per target (default 300)")
    ap.add_argument("--warmup", type=int, default=30, help="unmeasured requests per target first (default 30)")
    ap.add_argument("--model", default="smart", help="model name in the request (default smart)")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("targets", nargs="+", metavar="NAME=URL")
    args = ap.parse_args()

    body = json.dumps(
        {
            "model": args.model,
            "stream": True,
            "max_tokens": args.max_tokens,
            "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Say hello in five words."},
            ],
        },
        separators=(",", ":"),
    ).encode()

    targets = []
    try:
        for spec in args.targets:
            name, sep, url = spec.partition("=")
            if not sep:
                raise BenchError(f"target {spec!r}: want NAME=URL")
            targets.append(Target(name, url, body))
        for i in range(args.warmup + args.n):
            for t in targets:
                t.one(record=i >= args.warmup)
    except (BenchError, OSError) as e:
        print(f"first_frame: {e}", file=sys.stderr)
        return 1
    finally:
        for t in targets:
            t.close()

    for t in targets:
        print(json.dumps(t.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
