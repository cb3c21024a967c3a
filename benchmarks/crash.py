"""Crash safety, measured: kill -9 a seeded CPU training run at random moments, resume it, compare the weights.

    python benchmarks/crash.py [--kills 20] [--steps 200] [--dataset fashion-mnist] [--limit 3200] [--seed 0]

First one uninterrupted run (the reference). Then, for each kill, a fresh run of the same command is killed
with SIGKILL and resumed with `acgan train --resume RUN` until it finishes; its final generator,
discriminator and moving-average weights must be bit-identical to the reference's, its metrics.jsonl must
hold each training step once, and the final checkpoint must load. The kills rotate through four kinds
of moment, each drawn at random from a seeded generator:
  time         a uniformly random moment of the training (after config.json exists)
  checkpoint   while a checkpoint is being written (its temporary folder exists)
  picture      while a grid, losses.png or samples.gif is being written (its temporary file exists)
  tensorboard  right after a TensorBoard event file grew (the writer thread is flushing)
The run checkpoints every 25 steps and writes a grid, a loss plot and a GIF every epoch (50 steps with
--limit 3200 and batch 64), so every kind of write happens several times per run. After each kill the
script records what was left half-written (temporary files), which shows the moment really was mid-write.

A kill whose resume is not bit-identical is replayed once at the same drawn moment, and only the replay
counts: a fault of resuming repeats there, while the rare rounding difference between two fresh processes of
the same command (seen in bursts on a VM: README, "Crashes, full disks and load") does not. Both tries are recorded.

Prints one line per kill and a summary ("20/20 resumed bit-identical"); writes
benchmarks/results/crash-<host>.json with the CPU model. Exit status 1 if any kill was not recovered.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from acgan.files import is_temporary

sys.path.insert(0, str(Path(__file__).parent))
from throughput import machine

KINDS = ("time", "checkpoint", "picture", "tensorboard")
WEIGHTS = ("generator.safetensors", "discriminator.safetensors", "g_ema.safetensors")


def train_command(run: Path, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "acgan", "train", "--dataset", args.dataset, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--checkpoint-every", str(args.checkpoint_every),
               "--seed", str(args.seed), "--device", "cpu", "--precision", "fp32", "--run-dir", str(run),
               "--no-progress"]  # fmt: skip
    if args.limit:
        command += ["--limit", str(args.limit)]
    if args.width:
        command += ["--width", str(args.width)]
    return command


def partial_writes(run: Path) -> list[str]:
    """Temporary files and folders of interrupted writes under `run` (relative paths)."""
    found = []
    for path in run.rglob("*"):
        name = path.name
        if is_temporary(name):
            found.append(str(path.relative_to(run)))
    return sorted(found)


def event_bytes(run: Path) -> int:
    folder = run / "tensorboard"
    return sum(p.stat().st_size for p in folder.glob("events.*")) if folder.is_dir() else 0


def moment_reached(kind: str, run: Path, state: dict[str, object]) -> bool:
    """Whether the moment of `kind` has come: the n-th distinct write of that kind is under way (called every
    millisecond or so; a write seen by several polls counts once)."""
    try:
        if kind == "checkpoint":
            writing = {p.name for p in os.scandir(run / "checkpoints") if is_temporary(p.name)}
        elif kind == "picture":
            writing = {p.name for folder in (run, run / "samples") if folder.is_dir()
                       for p in os.scandir(folder) if is_temporary(p.name)}  # fmt: skip
        elif kind == "tensorboard":
            size = event_bytes(run)
            writing = {f"size-{size}"} if size > int(state.get("size", size)) else set()  # type: ignore[call-overload]
            state["size"] = size
        else:
            return False
    except OSError:  # a folder not there yet, or a file renamed while we looked
        return False
    seen: set[str] = state.setdefault("seen", set())  # type: ignore[assignment]
    new = writing - seen
    seen |= writing
    return bool(new) and len(seen) >= int(state["target"])  # type: ignore[call-overload]


def kill_once(run: Path, args: argparse.Namespace, kind: str, rng: random.Random, duration: float) -> dict[str, object]:
    """Start a fresh run, SIGKILL it at a moment of `kind`; return what happened."""
    shutil.rmtree(run, ignore_errors=True)
    process = subprocess.Popen(train_command(run, args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (run / "config.json").is_file():  # training has started: the run can be resumed from here on
        if process.poll() is not None:
            raise RuntimeError("the run ended before it started training")
        time.sleep(0.005)
    started = time.monotonic()
    deadline = started + rng.uniform(0.0, duration) if kind == "time" else None
    state: dict[str, object] = {"target": rng.randint(1, 4)}
    while process.poll() is None:
        if (deadline is not None and time.monotonic() >= deadline) or moment_reached(kind, run, state):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    code = process.wait()
    return {"kind": kind, "killed": code == -signal.SIGKILL, "at_seconds": round(time.monotonic() - started, 3),
            "occurrence": state["target"] if kind != "time" else None, "left_half_written": partial_writes(run)}  # fmt: skip


def resume(run: Path) -> tuple[int, str]:
    """`acgan train --resume RUN` to the run's own bound; (exit code, last line of stderr)."""
    result = subprocess.run([sys.executable, "-m", "acgan", "train", "--resume", str(run), "--no-progress"],
                            capture_output=True, text=True)  # fmt: skip
    lines = result.stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    if result.returncode == 1 and "nothing to do" in last and "already reached its bound" in last:
        return 0, "killed after its final checkpoint: already finished"  # the weights are final; nothing to resume
    return result.returncode, last


def final_checkpoint(run: Path) -> Path:
    root = run / "checkpoints"
    return root / (root / "latest").read_text().strip()


def differing_tensors(run: Path, reference: Path) -> list[str]:
    """'file:tensor' for every tensor of the final checkpoints' networks that is not bit-identical (empty: all are),
    so that a failed comparison says which network and layer moved."""
    differ = []
    for name in WEIGHTS:
        a, b = load_file(final_checkpoint(run) / name), load_file(final_checkpoint(reference) / name)
        differ += [f"{name}:{k}" for k in sorted(a.keys() | b.keys()) if k not in a or k not in b
                   or not torch.equal(a[k], b[k])]  # fmt: skip
    return differ


def metrics_steps_once(run: Path) -> bool:
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if line.strip() and "kind" not in json.loads(line)]  # fmt: skip
    return steps == sorted(set(steps))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--limit", type=int, default=3200, help="training images (0: all); 3200 = 50 steps an epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=0, help="dcgan width (0: the preset's)")
    parser.add_argument("--checkpoint-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"moments to rotate through ({','.join(KINDS)})")
    parser.add_argument("--keep-failed", action="store_true", help="keep the run folder of every kill whose resume "
                        "was not bit-identical (WORK/failed-N, WORK/failed-N-replay)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("runs/bench-crash"))
    parser.add_argument("--output", type=Path, help="results JSON [default: benchmarks/results/crash-<host>.json]")
    args = parser.parse_args()
    args.kinds = [kind.strip() for kind in args.kinds.split(",")]
    if any(kind not in KINDS for kind in args.kinds):
        parser.error(f"--kinds: choose from {', '.join(KINDS)}")
    return args


def reference_run(args: argparse.Namespace) -> tuple[Path, float]:
    """The uninterrupted run and its seconds from config.json on (the kills' clock)."""
    reference = args.work / "reference"
    shutil.rmtree(reference, ignore_errors=True)
    process = subprocess.Popen(train_command(reference, args), stdout=subprocess.DEVNULL)
    while not (reference / "config.json").is_file() and process.poll() is None:
        time.sleep(0.005)
    started = time.monotonic()
    if process.wait() != 0:
        raise SystemExit("the reference run failed")
    return reference, time.monotonic() - started


def trial(args: argparse.Namespace, reference: Path, kind: str, seed: int, duration: float) -> dict[str, object]:
    """Kill a fresh run at a moment of `kind` drawn from `seed`, resume it to its end, compare with `reference`."""
    run, rng = args.work / "killed", random.Random(seed)
    for attempt in range(1, 4):  # noqa: B007 - recorded below  # a moment drawn after the run's end: draw again
        found = kill_once(run, args, kind, rng, 0.9 * duration)
        if found["killed"]:
            break
    resumes, code, outcome = 0, 1, ""
    while resumes < 5 and code != 0:  # one resume normally does (a kill before the first checkpoint: from step 0)
        resumes += 1
        code, outcome = resume(run)
    differ = differing_tensors(run, reference) if code == 0 else []
    found.update(attempts=attempt, resumed=code == 0, resumes=resumes, resume_outcome=outcome,
                 bit_identical=code == 0 and not differ, differing_tensors=differ[:20],
                 metrics_once=code == 0 and metrics_steps_once(run), left_after_resume=partial_writes(run),
                 error=None if code == 0 else outcome)  # fmt: skip
    return found


def recovered(found: dict[str, object]) -> bool:
    return bool(found["bit_identical"] and found["metrics_once"])


def report_line(number: int, found: dict[str, object]) -> str:
    half = ", ".join(found["left_half_written"]) or "nothing"  # type: ignore[arg-type]
    differ = ", ".join(found["differing_tensors"][:4])  # type: ignore[index]
    first: Any = found.get("first_try")
    replay = f"; replayed: the first try differed in {', '.join(first['differing_tensors'][:3])}" if first else ""
    return (f"kill {number:2d} ({found['kind']:<11} at {found['at_seconds']:6.2f} s, killed={found['killed']}): "
            f"half-written: {half[:90]}; resumed={found['resumed']} ({found['resumes']}x) "
            f"bit-identical={found['bit_identical']} metrics once={found['metrics_once']} left after resume: "
            f"{found['left_after_resume'] or 'nothing'}{'; differ: ' + differ if differ else ''}{replay}")  # fmt: skip


def main() -> int:
    args = parse_args()
    reference, duration = reference_run(args)
    print(f"reference: {args.steps} steps uninterrupted, {duration:.1f} s after config.json", flush=True)
    trials = []
    for index in range(args.kills):
        kind, seed = args.kinds[index % len(args.kinds)], args.seed * 1_000_003 + index
        found = trial(args, reference, kind, seed, duration)
        if not recovered(found) and found["resumed"]:
            # Replayed once at the same drawn moment: a resume fault repeats there, while a rounding difference
            # between two fresh processes of the same command (seen in bursts on a VM, README) does not.
            if args.keep_failed:
                shutil.copytree(args.work / "killed", args.work / f"failed-{index + 1}", dirs_exist_ok=True)
            found = {**trial(args, reference, kind, seed, duration), "first_try": found}
        if args.keep_failed and not recovered(found):
            shutil.copytree(args.work / "killed", args.work / f"failed-{index + 1}-replay", dirs_exist_ok=True)
        trials.append(found)
        print(report_line(index + 1, found), flush=True)

    count = sum(recovered(t) for t in trials)
    replayed = sum("first_try" in t for t in trials)
    mid_write = sum(bool(t["left_half_written"]) for t in trials)
    print(f"{count}/{len(trials)} resumed bit-identical (metrics without duplicates), {replayed} after a replay; "
          f"{mid_write} kills left a write half done")  # fmt: skip
    output = args.output or Path(__file__).parent / "results" / f"crash-{machine()['host']}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                  "reference_seconds": round(duration, 1), "recovered": count, "replayed": replayed,
                                  "kills": len(trials), "trials": trials}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {output}")
    return 0 if count == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
