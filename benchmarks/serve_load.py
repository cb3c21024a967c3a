"""Load on `acgan serve`: many concurrent clients against a local server, with and without micro-batching.

    python benchmarks/serve_load.py [--checkpoint runs/demo] [--clients 50] [--seconds 30] [--n 16]

Starts `acgan serve` as a separate process on a free localhost port (once with micro-batching, once with
--no-batching), then runs `clients` concurrent clients for `seconds` each; every client loops over
GET /api/v1/generate (random class and seed, `n` images, PNG). Prints requests/s, images/s, p50/p90/p99
latency, errors (anything but 200) and how many requests shared a generator call; writes JSON to
benchmarks/results/serve-load-<host>.json. Without --checkpoint, an untrained dcgan generator is served
(the cost of a request does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from throughput import machine  # type: ignore[import-not-found]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def untrained_checkpoint(folder: Path) -> Path:
    """An untrained dcgan generator for Fashion-MNIST, saved as acgan saves one."""
    import torch

    from acgan.checkpoint import atomic_write_bytes, safetensors_bytes
    from acgan.data.dataset import DatasetInfo
    from acgan.data.registry import FASHION_MNIST
    from acgan.models import ModelConfig, build_generator

    info = DatasetInfo("fashion-mnist", 10, 1, 28, FASHION_MNIST.class_names)
    config = ModelConfig("dcgan", 100, 10, 1, 28)
    generator = build_generator(config, seed=0)
    generator(torch.randn(16, 100), torch.arange(16) % 10)
    path = folder / "generator.safetensors"
    atomic_write_bytes(path, safetensors_bytes(generator, config, info, step=0))
    return path


def percentile_ms(seconds: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of latencies in seconds, in milliseconds; NaN when there are none."""
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def start_server(checkpoint: Path, port: int, batching: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "acgan.cli", "serve", "--checkpoint", str(checkpoint), "--port", str(port)]
    process = subprocess.Popen(command + ([] if batching else ["--no-batching"]), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("error: the server did not start within 60 s")


async def load(base: str, clients: int, seconds: float, n: int, num_classes: int) -> dict[str, object]:
    """`clients` concurrent request loops for `seconds`; latencies of the requests that finished in time."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(index: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(index)
        while time.monotonic() < deadline:
            params = {"label": rng.randrange(num_classes), "n": n, "seed": rng.randrange(1_000_000)}
            start = time.perf_counter()
            try:
                response = await http.get(f"{base}/api/v1/generate", params=params)
                outcome = (
                    "ok"
                    if response.status_code == 200 and response.content[:4] == b"\x89PNG"
                    else str(response.status_code)
                )
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            if outcome == "ok":
                latencies.append(time.perf_counter() - start)
            else:
                errors[outcome] = errors.get(outcome, 0) + 1

    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        elapsed = time.monotonic() - started
    return {"requests": len(latencies), "seconds": elapsed, "requests_per_s": len(latencies) / elapsed,
            "images_per_s": len(latencies) * n / elapsed, "p50_ms": percentile_ms(latencies, 0.50),
            "p90_ms": percentile_ms(latencies, 0.90), "p99_ms": percentile_ms(latencies, 0.99), "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
            "errors": errors}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--n", type=int, default=16, help="Images per request.")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.checkpoint or untrained_checkpoint(Path(scratch))
        rows = []
        print(f"{args.clients} clients x {args.seconds:g} s, GET /api/v1/generate n={args.n} (PNG), {checkpoint}")
        print(f"{'batching':<10}{'req/s':>8}{'img/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'errors':>8}"
              f"{'req/call':>10}")  # fmt: skip
        for batching in (True, False):
            port = free_port()
            server = start_server(checkpoint, port, batching)
            try:
                base = f"http://127.0.0.1:{port}"
                num_classes = httpx.get(f"{base}/api/v1/info").json()["num_classes"]
                asyncio.run(load(base, 4, 2.0, args.n, num_classes))  # warm-up
                before = httpx.get(f"{base}/api/v1/info").json()["batching"]
                result = asyncio.run(load(base, args.clients, args.seconds, args.n, num_classes))
                after = httpx.get(f"{base}/api/v1/info").json()["batching"]
            finally:
                server.terminate()
                server.wait(timeout=30)
            calls = after["generator_calls"] - before["generator_calls"]
            result["requests_per_generator_call"] = (after["requests"] - before["requests"]) / max(calls, 1)
            result["batching"] = batching
            rows.append(result)
            errors = sum(result["errors"].values())  # type: ignore[attr-defined]
            print(f"{'on' if batching else 'off':<10}{result['requests_per_s']:>8.1f}{result['images_per_s']:>8.0f}"
                  f"{result['p50_ms']:>9.0f}{result['p90_ms']:>9.0f}{result['p99_ms']:>9.0f}{errors:>8}"
                  f"{result['requests_per_generator_call']:>10.1f}", flush=True)  # fmt: skip
    output = args.output or Path(__file__).parent / "results" / f"serve-load-{platform.node()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine(), "clients": args.clients, "seconds": args.seconds, "images_per_request": args.n,
              "checkpoint": str(args.checkpoint or "untrained dcgan"), "results": rows}  # fmt: skip
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
