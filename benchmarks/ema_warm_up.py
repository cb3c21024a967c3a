"""Time to quality with another warm-up of G's moving average: benchmarks/quality.py with EMA_WARM_UP = K.

    python benchmarks/ema_warm_up.py K [quality.py's options]
    python benchmarks/ema_warm_up.py 9 --dataset mnist --minutes 5 --interval 5 --seed 0 --name emak9-s0

The average's decay after `step` steps is min(ema_decay, (1 + step) / (K + 1 + step)): it spans about the last
step / K steps until ema_decay caps it (acgan.training.ema.ema_decay_at). This runs quality.py in-process
with K in place of the default; its JSON records the machine but not K, so put K in --name.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        sys.exit(f"ema_warm_up.py: the first argument is K, a whole number >= 1\n{__doc__}")
    warm_up = int(sys.argv.pop(1))
    from acgan.training import ema

    ema.EMA_WARM_UP = warm_up  # ema_decay_at reads it at every step
    import quality  # type: ignore[import-not-found]

    quality.main()


if __name__ == "__main__":
    main()
