"""A full disk, measured: train into a small tmpfs until it fills, check what is left, free space, resume.

    sudo python benchmarks/disk_full.py [--dataset fashion-mnist] [--limit 3200] [--steps 200] [--fills 0.5,1.2,1.6,1.9]

Needs root (it mounts a tmpfs). First one uninterrupted run on the ordinary disk (the reference) gives the
run directory's final size S (with the defaults 18 MiB, 17 of them the one checkpoint kept). Then the same
command writes its run directory into a tmpfs of fill x S, for each of several fills: below 1 the disk
fills before the first checkpoint, between 1 and about 2 while a second checkpoint is written beside the
first (every write can be the one that fails: a checkpoint, a grid, the metrics, TensorBoard):
  - training must stop with exactly one line on stderr ("acgan: error: no space left ...") and exit 1;
  - no temporary checkpoint folder may be left taking space, and the checkpoint `latest` names must load
    (generator weights checked against their checksums, and the train state);
then the tmpfs is grown to 3 x S ("space freed") and `acgan train --resume` must finish with weights
bit-identical to the reference's (a fill that misses only this is replayed once, as crash.py does). A disk
that never filled counts when the run finished bit-identical.
Writes benchmarks/results/disk-full-<host>.json with the CPU model; exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from crash import differing_tensors, final_checkpoint, train_command
from throughput import machine

from acgan.files import is_temporary


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def mount_tmpfs(target: Path, size_bytes: int, remount: bool = False) -> None:
    options = f"{'remount,' if remount else ''}size={max(64, size_bytes // 1024)}k"
    if remount:
        subprocess.run(["mount", "-o", options, str(target)], check=True)
    else:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True)


def checkpoint_loads(run: Path) -> tuple[bool, str]:
    """Whether the checkpoint `latest` names loads (weights and train state); the reason when it does not."""
    from acgan.checkpoint import load_train_state, resolve_checkpoint_dir
    from acgan.errors import AcganError
    from acgan.sampling import load_generator

    try:
        checkpoint = resolve_checkpoint_dir(run)
        load_generator(checkpoint)
        load_train_state(checkpoint)
    except AcganError as exc:
        return False, str(exc)
    return True, checkpoint.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--limit", type=int, default=3200, help="training images (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fills",
        type=lambda text: [float(v) for v in text.split(",")],
        default=[0.5, 1.2, 1.6, 1.9],
        help="tmpfs sizes to try, as shares of the finished run's size (comma-separated)",
    )
    parser.add_argument("--work", type=Path, default=Path("runs/bench-disk-full"))
    parser.add_argument("--output", type=Path, help="results JSON [default: benchmarks/results/disk-full-<host>.json]")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("disk_full.py needs root to mount a tmpfs", file=sys.stderr)
        return 2

    reference = args.work.resolve() / "reference"
    shutil.rmtree(reference, ignore_errors=True)
    subprocess.run(train_command(reference, args), check=True, capture_output=True)
    size = folder_bytes(reference)
    results = [fill_with_replay(args, reference, size, fill) for fill in args.fills]
    ok = all(result["ok"] for result in results)
    filled = [r for r in results if r["disk_filled"]]
    print(f"{sum(bool(r['ok']) for r in filled)}/{len(filled)} full disks: one-line error, checkpoint intact, no "
          f"temporary leftovers, bit-identical resume ({len(results) - len(filled)} never filled)")  # fmt: skip
    output = args.output or Path(__file__).parent / "results" / f"disk-full-{machine()['host']}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                  "run_bytes": size, "results": results}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {output}")
    return 0 if ok else 1


def fill_with_replay(args: argparse.Namespace, reference: Path, size: int, fill: float) -> dict[str, object]:
    """`fill_once`, replayed once when only bit-identity failed: a fault of resuming repeats, the rare rounding
    difference between two fresh processes of the same command does not (see crash.py). Both tries recorded."""
    result = fill_once(args, reference, size, fill)
    if result["ok"] or result["bit_identical"] or result["resume_exit_code"] != 0:
        return result
    print("  not bit-identical: replaying this fill once", flush=True)
    return {**fill_once(args, reference, size, fill), "first_try": result}


def fill_once(args: argparse.Namespace, reference: Path, size: int, fill: float) -> dict[str, object]:
    """Train into a tmpfs of `fill` x `size` bytes, check what is left, grow it, resume; the findings."""
    mount = args.work.resolve() / "small-disk"
    subprocess.run(["umount", str(mount)], capture_output=True)  # a mount left by an interrupted earlier run
    mount_tmpfs(mount, int(fill * size))
    try:
        run = mount / "run"
        full = subprocess.run(train_command(run, args), capture_output=True, text=True)
        errors = [line for line in full.stderr.splitlines() if line.strip()]
        leftovers = sorted(p.name for p in (run / "checkpoints").iterdir() if is_temporary(p.name))
        loads, checkpoint = checkpoint_loads(run)
        filled = full.returncode != 0
        mount_tmpfs(mount, 3 * size, remount=True)
        resumed = subprocess.run([sys.executable, "-m", "acgan", "train", "--resume", str(run), "--no-progress"],
                                 capture_output=True, text=True) if filled else full  # fmt: skip
        differ = differing_tensors(run, reference) if resumed.returncode == 0 else []
        identical = resumed.returncode == 0 and not differ
        final = final_checkpoint(run).name if resumed.returncode == 0 else None
    finally:
        subprocess.run(["umount", str(mount)], check=False)
    one_line = full.returncode == 1 and len(errors) == 1 and errors[0].startswith("acgan: error: no space")
    stopped_well = one_line and not leftovers and (loads or "no checkpoint had been written" in errors[0])
    result = {
        "fill": fill, "tmpfs_bytes": int(fill * size), "exit_code": full.returncode, "stderr_lines": errors,
        "one_line_error": one_line, "temporary_leftovers": leftovers, "checkpoint_loads": loads,
        "checkpoint": checkpoint, "resume_exit_code": resumed.returncode,
        "resume_error": resumed.stderr.strip()[-300:] if resumed.returncode else "", "final_checkpoint": final,
        "bit_identical": identical, "differing_tensors": differ[:20],
        "disk_filled": filled, "ok": (stopped_well or not filled) and identical,
    }  # fmt: skip
    if not filled:
        print(f"tmpfs {fill:.0%} of {size / 2**20:.2f} MiB: the disk never filled (the run finished; bit-identical "
              f"{identical})", flush=True)  # fmt: skip
        return result
    print(f"tmpfs {fill:.0%} of {size / 2**20:.2f} MiB: exit {full.returncode}, stopped with latest {checkpoint} "
          f"(loads: {loads}), leftovers {leftovers or 'none'}; resumed: exit {resumed.returncode}, final {final}, "
          f"bit-identical {identical}{' (differ: ' + ', '.join(differ[:5]) + ')' if differ else ''}\n"
          f"  {errors[0] if errors else '(no error line)'}", flush=True)  # fmt: skip
    return result


if __name__ == "__main__":
    sys.exit(main())
