"""A small HTTP/1.1 load generator for fixed lists: each request of a file sent exactly once.

    python -m benchmarks.loadgen FILE URL --connections 64

wrk runs for a duration, not a count; this sends the requests of a ``requests.lua`` file (same
format) once each over keep-alive connections, then prints the same ``RESULT {...}`` line as
the wrk script. It runs in its own process, on uvloop, with nothing but sockets and a minimal
response parser (Content-Length or chunked), so that it costs the machine little.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import uvloop


def read_requests(path: Path, host: str) -> list[bytes]:
    common: list[tuple[str, str]] = []
    tokens: dict[str, str] = {}
    prepared = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if fields[0] == "H":
            common.append((fields[1], fields[2]))
        elif fields[0] == "T":
            tokens[fields[1]] = fields[2]
        elif fields[0] == "R":
            method, target, token_name = fields[1], fields[2], fields[3]
            headers = [("Host", host), *common]
            if token_name in tokens:
                headers.append(("Authorization", f"Bearer {tokens[token_name]}"))
            head = f"{method} {target} HTTP/1.1\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in headers)
            prepared.append((head + "\r\n").encode())
    return prepared


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def run(url: str, requests: list[bytes], connections: int) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    failures = 0
    next_index = 0

    async def connection() -> None:
        nonlocal next_index, failures
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next_index < len(requests):
                request = requests[next_index]
                next_index += 1
                sent = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - sent)
                if status >= 400:
                    failures += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    duration = time.perf_counter() - started
    ordered = sorted(latencies)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1e6

    return {
        "requests": len(latencies),
        "duration_us": duration * 1e6,
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p95_us": at(0.95),
        "p99_us": at(0.99),
        "max_us": ordered[-1] * 1e6,
        "mean_us": sum(ordered) / len(ordered) * 1e6,
        "errors_connect": 0,
        "errors_read": 0,
        "errors_write": 0,
        "errors_status": failures,
        "errors_timeout": 0,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requests", type=Path)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    host = urlsplit(args.url).netloc
    prepared = read_requests(args.requests, host)
    summary = uvloop.run(run(args.url, prepared, min(args.connections, len(prepared))))
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
