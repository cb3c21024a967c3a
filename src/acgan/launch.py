"""`acgan train --nproc N`: the shorthand for `torchrun --standalone --nproc-per-node N -m acgan train ...`.

It runs torchrun's own launcher in this process (one machine, a free port found by its rendezvous) and turns
its outcome into an exit code: 0, the workers' 130 when they were interrupted (each saved its checkpoint
first), or 1 with one line naming the failed ranks. Several machines: call torchrun yourself (README).
"""

from __future__ import annotations

import logging
import os
import signal

import click

from acgan.errors import EXIT_INTERRUPTED


def strip_nproc(args: list[str]) -> list[str]:
    """`args` without `--nproc N` / `--nproc=N` (the workers must not launch again)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


def torchrun_train(nproc: int, args: list[str]) -> int:
    """Run `acgan ARGS` (a train command line) in `nproc` processes under torchrun on this machine; the exit code.

    Each process gets an equal share of the CPU cores for its threads unless OMP_NUM_THREADS is set.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    for name in ("torch.distributed.run", "torch.distributed.elastic"):  # its notices; we say what failed
        logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    argv = ["--standalone", f"--nproc-per-node={nproc}", "-m", "acgan", *strip_nproc(args)]
    click.echo(f"launching {nproc} processes: torchrun {' '.join(argv)}", err=True)
    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        codes = {rank: failure.exitcode for rank, failure in exc.failures.items()}
        stopped = (EXIT_INTERRUPTED, -signal.SIGTERM, -signal.SIGINT)  # torchrun ends the others after one exits
        if EXIT_INTERRUPTED in codes.values() and all(code in stopped for code in codes.values()):
            return EXIT_INTERRUPTED  # every rank agreed to stop after rank 0 saved the checkpoint
        failed = ", ".join(f"rank {rank} ({_describe(code)})" for rank, code in sorted(codes.items()))
        click.echo(f"acgan: error: training processes failed: {failed}; their messages are above", err=True)
        return 1
    except SignalException as exc:
        # torchrun passed the signal on to every worker and waited for them: each saved its checkpoint.
        click.echo(f"acgan: stopped by {signal.Signals(exc.sigval).name}", err=True)
        return EXIT_INTERRUPTED
    return 0


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
