"""Sampling speed of an exported generator: ONNX Runtime against PyTorch on this CPU, interleaved repeats.

    python benchmarks/export_speed.py --checkpoint runs/demo --batch 256 --repeats 5

Exports the checkpoint's generator to ONNX (verified by acgan.export), then times PyTorch (fp32, eval,
inference mode, the same threads) and ONNX Runtime on the same latents, alternating, and prints images/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import onnxruntime
import torch
from throughput import machine  # type: ignore[import-not-found]

from acgan.export import export_generator
from acgan.sampling import load_generator, make_latents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trained = load_generator(args.checkpoint)
    generator = trained.generator.float().eval()
    z = make_latents(args.batch, generator.config.z_dim, seed=0)
    labels = torch.arange(args.batch) % trained.info.num_classes
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.onnx"
        check = export_generator(trained, "onnx", path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"z": z.numpy(), "labels": labels.numpy()}
        timings: dict[str, list[float]] = {"pytorch": [], "onnxruntime": []}
        with torch.inference_mode():
            generator(z, labels)
            session.run(["images"], feed)  # warm-up both
            for _ in range(args.repeats):
                start = time.perf_counter()
                generator(z, labels)
                timings["pytorch"].append(time.perf_counter() - start)
                start = time.perf_counter()
                session.run(["images"], feed)
                timings["onnxruntime"].append(time.perf_counter() - start)
    rates = {name: args.batch / min(values) for name, values in timings.items()}
    for name, rate in rates.items():
        print(f"{name:<12} {rate:9.0f} images/s (best of {args.repeats}, batch {args.batch})")
    print(f"export check: max |difference| {check['max_abs_diff']:.2e}; preset {generator.config.preset}, "
          f"{trained.info.channels}x{trained.info.resolution}x{trained.info.resolution}")  # fmt: skip
    record = {"machine": machine(), "checkpoint": str(args.checkpoint), "batch": args.batch, "images_per_s": rates,
              "torch_threads": torch.get_num_threads(), "max_abs_diff": check["max_abs_diff"]}  # fmt: skip
    out = Path(__file__).parent / "results" / "export_speed.json"
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
