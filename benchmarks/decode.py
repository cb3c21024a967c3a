"""Decode-cache throughput: images/s decoding a folder of JPEGs, and the start time of a second run.

    python benchmarks/decode.py --images 4000 --size 320x240 --resolution 64

Writes a labelled folder of photo-like JPEGs (smooth colour gradients plus noise, 10 classes) to a temporary
directory, then loads it with acgan three times in fresh processes: the first decodes every file into the
cache, the second and third find the cache. Prints seconds, images/s and peak memory (RSS) per load, and
writes benchmarks/results/decode.json with the machine's details.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from throughput import machine  # type: ignore[import-not-found]

LOAD = """
import json, resource, sys, time
start = time.monotonic()
from acgan.data import load_dataset
data = load_dataset(sys.argv[1], "train", resolution=int(sys.argv[2]))
seconds = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "images": len(data), "peak_rss_bytes": peak, "in_memory": data.in_memory}))
"""


def write_folder(root: Path, images: int, width: int, height: int) -> None:
    """`images` JPEGs (quality 90) in 10 class folders."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(images):
        folder = root / f"class{index % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b = rng.uniform(0.002, 0.02, 2)
        base = np.stack([np.sin(a * xs + b * ys + k) for k in rng.uniform(0, 6, 3)], axis=2)
        noise = rng.normal(0, 0.15, (height, width, 3))
        pixels = np.clip((base + noise + 1) * 127.5, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:06d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "photos", Path(tmp) / "cache"
        write_folder(root, args.images, width, height)
        megabytes = sum(p.stat().st_size for p in root.rglob("*.jpg")) / 1e6
        env = {**os.environ, "ACGAN_CACHE_DIR": str(cache)}
        runs = []
        for label in ("first (decode)", "second (cached)", "third (cached)"):
            out = subprocess.run([sys.executable, "-c", LOAD, str(root), str(args.resolution)], env=env,
                                 check=True, capture_output=True, text=True).stdout  # fmt: skip
            result = json.loads(out.strip().splitlines()[-1])
            result["label"] = label
            runs.append(result)
            print(f"{label:<16} {result['seconds']:7.2f} s  {result['images'] / result['seconds']:9.0f} images/s  "
                  f"peak RSS {result['peak_rss_bytes'] / 2**20:6.0f} MiB")  # fmt: skip
    record = {"machine": machine(), "images": args.images, "jpeg_size": [width, height], "jpeg_megabytes": megabytes,
              "resolution": args.resolution, "runs": runs}  # fmt: skip
    out_path = Path(__file__).parent / "results" / "decode.json"
    out_path.write_text(json.dumps(record, indent=2))
    print(f"{args.images} JPEGs of {width}x{height} ({megabytes:.0f} MB) -> {args.resolution} px; wrote {out_path}")


if __name__ == "__main__":
    main()
