"""A soak of `acgan serve`: many concurrent clients for minutes, good and bad requests mixed.

    python benchmarks/serve_soak.py [--checkpoint runs/demo] [--clients 50] [--seconds 300] [--bad-share 0.3]

Starts `acgan serve` on a free loopback port (localhost only), then `clients` concurrent loops for `seconds`.
Each request is good (generate, interpolate, class-sweep, info, the page; random classes, seeds, sizes and
formats) or, with probability `bad-share`, one of BAD_REQUESTS (unknown class, counts and seeds out of range,
wrong types, unknown routes, a URL over the limit, a request body...). Every answer is checked: good
requests must get 200 with a PNG, NPZ, JSON or HTML body; bad ones their documented 4xx; a 503 (busy, with
Retry-After) is allowed for either; any other 5xx, or a connection error, is a failure. The server's resident
memory (VmRSS) is sampled every 10 s: the report gives it after warm-up, at the end, and its peak.
Prints latency percentiles of the good requests and the status counts; writes
benchmarks/results/serve-soak-<host>.json with the CPU model. Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from serve_load import free_port, percentile_ms, start_server, untrained_checkpoint
from throughput import machine

# (method, path, expected status) of requests every server must refuse, whatever its checkpoint.
BAD_REQUESTS: tuple[tuple[str, str, int], ...] = (
    ("GET", "/api/v1/generate?label=no-such-class", 422),
    ("GET", "/api/v1/generate?label=999", 422),
    ("GET", "/api/v1/generate?label=%C2%B2", 422),  # "²": a digit to str.isdigit(), not to int()
    ("GET", "/api/v1/generate?n=0", 422),
    ("GET", "/api/v1/generate?n=100000", 422),
    ("GET", "/api/v1/generate?n=abc", 422),
    ("GET", "/api/v1/generate?seed=-1", 422),
    ("GET", "/api/v1/generate?seed=99999999999999999999999", 422),
    ("GET", "/api/v1/generate?seed=9223372036854775807&n=2", 422),
    ("GET", "/api/v1/generate?format=gif", 422),
    ("GET", "/api/v1/generate?columns=0", 422),
    ("GET", "/api/v1/generate?scale=100", 422),
    ("GET", "/api/v1/interpolate?steps=1", 422),
    ("GET", "/api/v1/interpolate?seed_a=x", 422),
    ("GET", "/api/v1/class-sweep?rows=1000", 422),
    ("GET", "/api/v1/nothing-here", 404),
    ("GET", "/api/v1/generate?label=" + "x" * 3000, 414),
    ("POST", "/api/v1/generate", 413),  # with a body: refused before routing
    ("DELETE", "/api/v1/info", 405),
)


def good_request(rng: random.Random, num_classes: int) -> tuple[str, str, str]:
    """(method, path, expected kind of body) of a valid request, drawn at random."""
    fmt = rng.choice(["png", "npz"])
    seed = rng.randrange(2**40)
    choice = rng.random()
    if choice < 0.6:
        return "GET", f"/api/v1/generate?label={rng.randrange(num_classes)}&n={rng.randint(1, 32)}&seed={seed}" \
                      f"&format={fmt}", fmt  # fmt: skip
    if choice < 0.75:
        return "GET", f"/api/v1/interpolate?label={rng.randrange(num_classes)}&seed_a={seed}&seed_b={seed + 1}" \
                      f"&steps={rng.randint(2, 16)}&format={fmt}", fmt  # fmt: skip
    if choice < 0.9:
        return "GET", f"/api/v1/class-sweep?seed={seed}&rows={rng.randint(1, 2)}&format={fmt}", fmt
    return ("GET", "/api/v1/info", "json") if choice < 0.97 else ("GET", "/", "html")


def body_is(kind: str, response: httpx.Response) -> bool:
    content = response.content
    return {"png": content[:8] == b"\x89PNG\r\n\x1a\n", "npz": content[:2] == b"PK",
            "json": content[:1] == b"{", "html": b"<html" in content[:200].lower()}[kind]  # fmt: skip


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def soak(base: str, pid: int, args: argparse.Namespace, num_classes: int) -> dict[str, object]:
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    latencies: list[float] = []
    memory: list[tuple[float, float]] = []
    deadline = time.monotonic() + args.seconds
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)

    async def client(index: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(args.seed * 1000 + index)
        while time.monotonic() < deadline:
            bad = rng.random() < args.bad_share
            if bad:
                method, path, expected = rng.choice(BAD_REQUESTS)
            else:
                method, path, kind = good_request(rng, num_classes)
            started = time.perf_counter()
            try:
                response = await http.request(method, base + path, content=b"x" if method == "POST" else None)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                failures.append(f"{method} {path[:80]}: {type(exc).__name__}")
                continue
            code = response.status_code
            statuses[str(code)] += 1
            if code == 503:
                continue  # documented back-pressure
            if bad and code != expected:
                failures.append(f"{method} {path[:80]}: {code}, expected {expected}")
            elif not bad and (code != 200 or not body_is(kind, response)):
                failures.append(f"{method} {path[:80]}: {code} {response.content[:80]!r}")
            elif not bad:
                latencies.append(time.perf_counter() - started)

    async def watch_memory() -> None:
        start = time.monotonic()
        while time.monotonic() < deadline:
            memory.append((round(time.monotonic() - start, 1), resident_mib(pid)))
            await asyncio.sleep(10)
        memory.append((round(time.monotonic() - start, 1), resident_mib(pid)))

    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        started = time.monotonic()
        await asyncio.gather(watch_memory(), *(client(i, http) for i in range(args.clients)))
        elapsed = time.monotonic() - started
    server_errors = sum(n for code, n in statuses.items() if code.isdigit() and int(code) >= 500 and code != "503")
    return {"seconds": round(elapsed, 1), "requests": sum(statuses.values()), "statuses": dict(statuses),
            "server_errors_not_503": server_errors, "failures": len(failures), "failure_examples": failures[:10],
            "good_latency_ms": {f"p{round(q * 100)}": round(percentile_ms(latencies, q), 1) for q in (0.5, 0.9, 0.99)}
            | {"max": round(max(latencies, default=float("nan")) * 1000, 1)},
            "rss_mib": {"start": memory[0][1], "end": memory[-1][1], "peak": max(m for _, m in memory)},
            "rss_samples": memory}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--bad-share", type=float, default=0.3)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before memory is first read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.checkpoint or untrained_checkpoint(Path(scratch))
        port = free_port()
        server = start_server(checkpoint, port, batching=True)
        try:
            base = f"http://127.0.0.1:{port}"
            num_classes = httpx.get(f"{base}/api/v1/info").json()["num_classes"]
            warm = argparse.Namespace(**{**vars(args), "seconds": args.warmup})
            asyncio.run(soak(base, server.pid, warm, num_classes))  # allocator and batcher reach steady state
            result = asyncio.run(soak(base, server.pid, args, num_classes))
            alive = server.poll() is None
        finally:
            server.terminate()
            server.wait(timeout=30)
    latency, rss = result["good_latency_ms"], result["rss_mib"]
    print(f"{args.clients} clients x {result['seconds']} s against {checkpoint} ({args.bad_share:.0%} bad requests): "
          f"{result['requests']} requests, statuses {result['statuses']}")  # fmt: skip
    print(f"good requests: p50 {latency['p50']} ms, p90 {latency['p90']} ms, p99 {latency['p99']} ms, max "  # type: ignore[index]
          f"{latency['max']} ms; server RSS {rss['start']:.0f} MiB after warm-up, {rss['end']:.0f} MiB at the end, "  # type: ignore[index]
          f"peak {rss['peak']:.0f} MiB")  # type: ignore[index]  # fmt: skip
    print(f"5xx other than 503: {result['server_errors_not_503']}; wrong answers: {result['failures']}; server "
          f"still up: {alive}")  # fmt: skip
    for example in result["failure_examples"]:  # type: ignore[attr-defined]
        print(f"  {example}")
    output = args.output or Path(__file__).parent / "results" / f"serve-soak-{machine()['host']}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
              "checkpoint": str(args.checkpoint or "untrained dcgan"), "server_alive": alive, **result}  # fmt: skip
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}")
    return 0 if alive and not result["failures"] and not result["server_errors_not_503"] else 1


if __name__ == "__main__":
    sys.exit(main())
