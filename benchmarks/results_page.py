"""docs/results.md, rendered from the benchmarks' JSON files: what the current code measured, never typed by hand.

    python benchmarks/results_page.py            # write docs/results.md (make results)
    python benchmarks/results_page.py --check    # exit 1 when docs/results.md differs from what the JSON says

Reads every JSON file at the top of benchmarks/results/ (superseded experiments live in
benchmarks/results/archive/ and are not shown). Each kind of file (by its name's prefix) has a renderer that
makes one section: its tables, the command that produced them and the machine and date they were measured on
(with the commit when the file records one). The output depends only on the files' contents (sorted, never by
file times), so a clean clone renders the committed page exactly (tests/test_results_page.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PAGE = REPO / "docs" / "results.md"
QUALITY_COLUMNS = (("conditional_accuracy", "cond. acc.", 3), ("intra_fd", "intra-FD", 2), ("fd", "FD", 2),
                   ("precision", "precision", 3), ("recall", "recall", 3), ("coverage", "coverage", 3),
                   ("ms_ssim", "MS-SSIM", 3))  # fmt: skip
Record = dict[str, Any]


def cpu_features(record: Record) -> str:
    """The record's CPU bf16 features in one word: 'AMX', 'AVX512-BF16', 'no bf16' or 'not recorded'."""
    flags = record.get("machine", {}).get("cpu_flags")
    if flags is None:
        return "not recorded"
    return "AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else "no bf16"


def machine_line(records: list[Record]) -> str:
    """'Intel(R) Xeon(R) Processor, 2 cores, bf16 features AMX, no GPU; 2026-12-06; commit ab41e66' per machine
    and date the records were measured on (several commits of one machine and date listed together)."""
    commits: dict[str, list[str]] = {}
    for record in records:
        machine = record.get("machine", {})
        gpu = machine.get("gpu") or "no GPU"
        line = (f"{machine.get('cpu_model', 'CPU model not recorded')}, {machine.get('cpu_count', '?')} cores, bf16 "
                f"features {cpu_features(record)}, {gpu}; {str(machine.get('date', '?'))[:10]}")  # fmt: skip
        listed = commits.setdefault(line, [])
        if machine.get("commit") and machine["commit"] not in listed:
            listed.append(machine["commit"])
    return "; ".join(f"{line}; commit{'s' if len(c) > 1 else ''} {', '.join(c)}" if c else line
                     for line, c in commits.items())  # fmt: skip


def table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < numeric_from else "---:" for i in range(len(header))) + "|"]  # fmt: skip
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def cell(values: list[float], digits: int) -> str:
    """The mean, and after +- half the range when there are several values."""
    if not values:
        return "n/a"
    mean = sum(values) / len(values)
    spread = "" if len(values) == 1 else f" ± {(max(values) - min(values)) / 2:.{digits}f}"
    return f"{mean:.{digits}f}{spread}"


# --- quality ---


def quality_section(records: list[Record]) -> list[str]:
    """One table per (data set, budget): runs grouped by preset and name (seeds averaged), beside real data."""
    lines = ["## Quality", "",
             "Each run trains from scratch for a wall-clock budget (evaluations excluded from the clock), then draws "
             "class-balanced samples for `acgan evaluate`'s metrics, judged by the data set's reference classifier "
             "(not comparable with Inception-based numbers in papers). Lower is better for intra-FD, FD and "
             "MS-SSIM, higher for the rest; each table ends with the same metrics for the real test images. Several "
             "seeds: the mean ± half the range.", ""]  # fmt: skip
    for (dataset, minutes), group in sorted(quality_groups(records).items()):
        lines += [f"### {dataset}, {minutes:g} minutes", "", *quality_table(group), ""]
        lines += curve_tables(group)
    check = ranking_check(records)
    return lines + (["### Does a 10-minute screen rank like 20 minutes?", "", *check, ""] if check else [])


def quality_groups(records: list[Record]) -> dict[tuple[str, float], list[Record]]:
    """Quality records by (data set's name, budget in minutes): the name, since the same folder has different paths
    on different machines."""
    groups: dict[tuple[str, float], list[Record]] = {}
    for record in records:
        groups.setdefault((Path(record["dataset"]).name, float(record["budget_minutes"])), []).append(record)
    return groups


def quality_table(group: list[Record]) -> list[str]:
    """The command line, the machines, and a row per run (seeds averaged) of one data set and budget, then real data;
    where CPU kinds mix, a block per kind (its runs, then its own evaluation of the real images), each row naming it."""
    kinds: dict[str, list[Record]] = {}
    for record in group:
        kinds.setdefault(cpu_features(record), []).append(record)
    mixed = len(kinds) > 1
    header = ["preset", "run", "options", "seeds", *(["CPU"] if mixed else []), "steps", "images/s",
              *(t for _, t, _ in QUALITY_COLUMNS)]  # fmt: skip
    rows = []
    for kind, members in sorted(kinds.items()):
        rows += run_rows(members, [kind] if mixed else [])
        real = members[-1]["real"]  # the kind's last run's evaluation of the real test images
        rows.append(["real test images", "", "", "", *([kind] if mixed else []), "", "",
                     *(cell([real[key]] if key in real else [], d) for key, _, d in QUALITY_COLUMNS)])  # fmt: skip
    path, dataset, minutes = group[0]["dataset"], Path(group[0]["dataset"]).name, float(group[0]["budget_minutes"])
    shown = path if "/" not in path else f".../{dataset}"  # a folder of the machine it ran on
    command = (f"python benchmarks/quality.py --dataset {shown} --preset PRESET --minutes {minutes:g} "
               f"--samples {group[0]['samples']} [--seed N] [--set FIELD=VALUE ...]")  # fmt: skip
    return [
        f"`{command}` (each row's options are its `--set`s). Machines: {machine_line(group)}.",
        "",
        *table(header, rows, numeric_from=5 if mixed else 4),
    ]


def run_rows(records: list[Record], cpu: list[str]) -> list[list[str]]:
    """A row per (preset, run name), seeds averaged: preset, run, options, seeds, the `cpu` cells, then the numbers."""
    runs: dict[tuple[str, str], list[Record]] = {}
    for record in sorted(records, key=lambda r: (r["preset"], str(r.get("name")), r.get("seed", 0))):
        runs.setdefault((record["preset"], str(record.get("name", "default"))), []).append(record)
    rows = []
    for (preset, name), members in runs.items():
        finals = [member["curve"][-1] for member in members]
        options = ", ".join(f"{k}={v}" for k, v in run_options(members[0]).items()) or "-"
        rows.append([preset, name, options, ",".join(str(m.get("seed", 0)) for m in members), *cpu,
                     cell([f["steps"] for f in finals], 0),
                     cell([f["images_per_s"] for f in finals if "images_per_s" in f], 0),
                     *(cell([f[key] for f in finals if key in f], digits) for key, _, digits in QUALITY_COLUMNS)])  # fmt: skip
    return rows


# preset training defaults a row names when its run differs from them, unless it set the option that replaces them
SHOWN_PRESET_TRAINING = {"lr_decay": "lr_end"}


def run_options(record: Record) -> dict[str, Any]:
    """A run's `--set`s, and the architecture settings (and SHOWN_PRESET_TRAINING) in which it differs from what its
    preset means today (a preset's defaults may change after a run: the row must still say what ran; a field the
    run's record lacks had its legacy value)."""
    from dataclasses import fields

    from acgan.config import TrainConfig
    from acgan.models.presets import PRESETS

    options = dict(record["overrides"])
    preset, ran = PRESETS.get(record["preset"]), record.get("train_config", {})
    for field in fields(TrainConfig):
        attr = field.metadata.get("preset")
        replaced_by = SHOWN_PRESET_TRAINING.get(field.name)
        shown = field.metadata.get("model") or (replaced_by is not None and replaced_by not in options)
        value = ran.get(field.name, field.metadata.get("legacy") if ran else None)
        if preset and shown and attr and value is not None and field.name not in options \
                and value != getattr(preset, attr):  # fmt: skip
            options[field.name] = value
    return options


def colour_screen(records: list[Record]) -> str:
    """README's table of the colour screen (the CIFAR-10 subset's folders, 10 minutes per run)."""
    group = quality_groups(records).get(("cifar10-subset-folders", 10.0), [])
    return "\n".join([*quality_table(group), "",
                      "*Each run's final evaluation on 5,000 samples. Compare rows only within one CPU kind: the same "
                      "minutes give a CPU without bf16 matrix units fewer steps (the steps column). Made by "
                      "`bash benchmarks/run_queue.sh benchmarks/queues/screen-colour.txt`; curves and other data sets "
                      "in [docs/results.md](docs/results.md).*"]) if group else ""  # fmt: skip


def colour_candidates(records: list[Record]) -> str:
    """README's table of the colour candidates at 20 minutes on the CIFAR-10 subset's folders, seeds averaged: the
    table the colour default is chosen from."""
    group = quality_groups(records).get(("cifar10-subset-folders", 20.0), [])
    return "\n".join([*quality_table(group), "",
                      "*Each run's evaluation after 20 minutes of training, 5,000 samples; several seeds: the mean ± "
                      "half the range; compare rows within one CPU kind, each beside its own real-image row. Made by "
                      "`bash benchmarks/run_queue.sh benchmarks/queues/QUEUE.txt` with the queues `seeds-colour`, "
                      "`cosine-colour`, `amx-colour`, `amx-colour-widths` and `amx-width-precision`.*"]) if group else ""  # fmt: skip


def point_near(record: Record, minutes: float) -> Record | None:
    """The run's evaluation within a minute of `minutes` of training, if it had one."""
    near = [point for point in record["curve"] if abs(point["minutes"] - minutes) <= 1.0]
    return near[0] if near else None


RANK_POINTS, RANK_COLUMNS = (10.0, 20.0), (("conditional_accuracy", "cond. acc.", 3), ("intra_fd", "intra-FD", 2),
                                           ("fd", "FD", 2), ("recall", "recall", 3))  # fmt: skip


def ranking_check(records: list[Record]) -> list[str]:
    """Does a 10-minute screen rank like 20 minutes? Each run on the CIFAR-10 subset's folders evaluated at both
    times, its headline metrics at each and its rank by conditional accuracy at each: a table per CPU kind (the
    same minutes are different training on another CPU), for each kind with two runs or more."""
    runs = [r for r in records if Path(r["dataset"]).name == "cifar10-subset-folders"
            and all(point_near(r, m) for m in RANK_POINTS)]  # fmt: skip
    kinds: dict[str, list[Record]] = {}
    for record in runs:
        kinds.setdefault(cpu_features(record), []).append(record)
    lines: list[str] = []
    for _, members in sorted(kinds.items()):
        if len(members) > 1:
            lines += [*([""] if lines else []), *ranking_table(members)]
    return lines


def ranking_table(runs: list[Record]) -> list[str]:
    """The ranking check's table of runs on one CPU kind."""
    points = {id(r): [point_near(r, m) or {} for m in RANK_POINTS] for r in runs}
    ranks = [sorted(runs, key=lambda r: -points[id(r)][i]["conditional_accuracy"]) for i in range(len(RANK_POINTS))]
    header = ["preset", "run", "options", "seed", *(f"{title} 10 / 20 min" for _, title, _ in RANK_COLUMNS),
              "rank 10 / 20 min"]  # fmt: skip
    rows = []
    for record in sorted(runs, key=lambda r: ranks[0].index(r)):
        at10, at20 = points[id(record)]
        options = ", ".join(f"{k}={v}" for k, v in run_options(record).items()) or "-"
        rows.append([record["preset"], str(record.get("name", "default")), options, str(record.get("seed", 0)),
                     *(f"{at10[key]:.{d}f} / {at20[key]:.{d}f}" for key, _, d in RANK_COLUMNS),
                     f"{ranks[0].index(record) + 1} / {ranks[1].index(record) + 1}"])  # fmt: skip
    return [f"Each run evaluated after 10 and after 20 minutes of its training (5,000 samples; rank by conditional "
            f"accuracy). Machines: {machine_line(runs)}.", "", *table(header, rows, numeric_from=4)]  # fmt: skip


GREY_CHECK = (("mnist", 5.0), ("fashion-mnist", 10.0))  # the grey default's budgets: MNIST 5 min, Fashion 10 min


def grey_check(records: list[Record]) -> str:
    """README's table of the grey default against the colour default on grey data: the runs named g-* (one machine,
    benchmarks/queues/grey-candidates.txt), per data set and budget."""
    lines = []
    for dataset, minutes in GREY_CHECK:
        group = [r for r in quality_groups(records).get((dataset, minutes), []) if str(r.get("name")).startswith("g-")]
        if group:
            lines += [f"**{dataset}, {minutes:g} minutes**", "", *quality_table(group), ""]
    return "\n".join(lines).rstrip("\n")


COLOUR_PICTURE_RUN = "m20-dcgan-cbn-cosine-fit"  # the 20-minute run (seed 0) whose grid the README shows


def colour_picture_caption(records: list[Record]) -> str:
    """The README's caption of the colour default's picture: its 20-minute run on the CIFAR-10 subset's folders."""
    from acgan.models.presets import COLOUR_PRESET

    runs = [r for r in quality_groups(records).get(("cifar10-subset-folders", 20.0), [])
            if r.get("name") == COLOUR_PICTURE_RUN and r.get("seed", 0) == 0]  # fmt: skip
    if not runs:
        return ""
    record, metrics = runs[0], runs[0]["final_eval"]["metrics"]

    def pair(name: str, digits: int) -> str:
        return f"{metrics[name]['generated']:.{digits}f} (real test images: {metrics[name]['real']:.{digits}f})"

    last = record["curve"][-1]
    return (f"*The colour default (`{COLOUR_PRESET}`) after {last['minutes']:.0f} minutes of training on the CIFAR-10 "
            f"subset's class folders ({last['steps']:,} steps; {machine_line([record])}): one row per class, one "
            f"fixed latent per column. `acgan evaluate` on {record['samples']:,} samples: conditional accuracy "
            f"{pair('conditional_accuracy', 3)}, intra-class FD {pair('intra_fd', 1)}, FD {pair('fd', 1)}, recall "
            f"{pair('recall', 2)}. Made by `python benchmarks/quality.py --dataset .../cifar10-subset-folders "
            f"--preset {COLOUR_PRESET} --minutes 20 --interval 10 --samples 5000 --picture "
            f"docs/cifar10-subset-{COLOUR_PRESET}.png`.*")  # fmt: skip


def curve_tables(group: list[Record]) -> list[str]:
    """For each run evaluated at three or more times: its metrics over the budget (does it keep improving?)."""
    lines = []
    for record in group:
        if len(record["curve"]) < 3:
            continue
        header = ["minutes", "steps", *(t for _, t, _ in QUALITY_COLUMNS)]
        rows = [[f"{point['minutes']:.0f}", f"{point['steps']}",
                 *(cell([point[key]] if key in point else [], digits) for key, _, digits in QUALITY_COLUMNS)]
                for point in record["curve"]]  # fmt: skip
        lines += [f"`{record['preset']}` {record.get('name', '')} (seed {record.get('seed', 0)}), evaluated during "
                  "its run:", "", *table(header, rows), ""]  # fmt: skip
    return lines


# --- speed ---


def speed_section(records: list[Record]) -> list[str]:
    """One row per machine: the default's images/s against 6563a79 in the same run, auto and both precisions."""
    lines = ["## Training speed by machine", "",
             "`python benchmarks/step_speed.py [--steps N] [--repeats R]`: the default preset on MNIST, `acgan "
             "train` for N steps, images/s from step 150 to N, the variants interleaved in one run R times (ratios "
             "are medians of per-repeat ratios), against the code of 2026-11-30 (6563a79). `auto` is what a user's "
             "first run gets (measured, then cached).", ""]  # fmt: skip
    header = ["machine", "date", "steps x repeats", "6563a79", "auto chose", "auto", "fp32", "bf16",
              "auto / 6563a79", "auto / faster forced", "step GFLOP/s (share of its matmul rate)"]  # fmt: skip
    rows = []
    for record in sorted(records, key=lambda r: str(r["machine"].get("date"))):
        summary, machine = record.get("summary", {}), record["machine"]
        if "auto" not in summary:
            continue  # a run from before the variants were measured
        auto = summary["auto"]
        args = record.get("args", {})
        rows.append([f"{machine['cpu_model']}, {machine['cpu_count']} cores, {cpu_features(record)}",
                     str(machine["date"])[:10], f"{args.get('steps', '?')} x {args.get('repeats', '?')}",
                     f"{summary['baseline']['images_per_s']:.0f}", f"{auto['precision']} ({auto['how']})",
                     f"{auto['images_per_s']:.0f}", f"{summary['fp32']['images_per_s']:.0f}",
                     f"{summary['bf16']['images_per_s']:.0f}", f"{auto['vs_baseline']:.2f}x",
                     f"{record['targets']['auto_vs_faster_forced']:.2f}x",
                     f"{auto['gflops']:.0f} ({auto['share_of_matmul_rate']:.0%})"])  # fmt: skip
    return lines + table(header, rows, numeric_from=2) + ["", f"Commits: {machine_line(records)}.", ""]


def profile_section(records: list[Record]) -> list[str]:
    """Where a step's time goes, per preset and precision."""
    lines = ["## Where a training step's time goes", ""]
    for record in records:
        args = record["args"]
        extra = "".join([f" --shape {args['shape']}" if args.get("shape", "1,28,28") != "1,28,28" else "",
                         *(f" --set {item}" for item in args.get("overrides", []))])  # fmt: skip
        lines += [f"`python benchmarks/profile_step.py --presets {args['presets']} --precisions {args['precisions']}"
                  f"{extra}`: {machine_line([record])}; batch {args['batch_size']}.", ""]  # fmt: skip
        groups = sorted({group for row in record["rows"] for group in row["groups_ms_per_step"]})
        header = ["preset, precision", "steps/s", "GFLOP/step", "GFLOP/s", "share of matmul rate",
                  *(f"{group} (ms)" for group in groups)]  # fmt: skip
        rows = [[f"{row['preset']}, {row['precision']}", f"{row['steps_per_s']:.1f}", f"{row['step_gflop']:.1f}",
                 f"{row['gflops']:.0f}", f"{row['share_of_matmul_rate']:.0%}",
                 *(f"{row['groups_ms_per_step'].get(group, 0.0):.1f}" for group in groups)] for row in record["rows"]]  # fmt: skip
        lines += [*table(header, rows), ""]
    return lines


# --- reliability and serving ---


def crash_section(records: list[Record]) -> list[str]:
    lines = ["## Kill -9 at any moment", ""]
    for record in records:
        trials = record["trials"]
        kinds: dict[str, int] = {}
        for trial in trials:
            kinds[trial["kind"]] = kinds.get(trial["kind"], 0) + 1
        torn = sum(bool(trial["left_half_written"]) for trial in trials)
        lines += [f"`python benchmarks/crash.py --kills {record['args']['kills']}` (a `dcgan` run of "
                  f"{record['args']['steps']} steps, SIGKILL at a random moment, then `--resume`): "
                  f"{machine_line([record])}.", "",
                  f"{record['recovered']} of {len(trials)} killed runs resumed bit-identical to an uninterrupted run "
                  f"({record.get('replayed', 0)} after one replay); {torn} kills cut a write in half. Moments: "
                  + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) + ".", ""]  # fmt: skip
    return lines


def disk_full_section(records: list[Record]) -> list[str]:
    lines = ["## A full disk", ""]
    for record in records:
        header = ["disk size (x the run's size)", "last good checkpoint", "one-line message", "no leftovers",
                  "resumed bit-identical"]  # fmt: skip
        rows = [[f"{r['fill']}", str(r.get("checkpoint") if r.get("checkpoint_loads") else "none yet"),
                 "yes" if r["one_line_error"] else "no", "yes" if not r["temporary_leftovers"] else "no",
                 "yes" if r["bit_identical"] else "no"] for r in record["results"]]  # fmt: skip
        lines += [f"`python benchmarks/disk_full.py`: a `dcgan` run of {record['args']['steps']} steps on a disk "
                  f"(tmpfs) a fraction of the run's size ({record['run_bytes'] / 2**20:.1f} MiB), then resumed on a "
                  f"larger one. {machine_line([record])}.", "", *table(header, rows), ""]  # fmt: skip
    return lines


def soak_section(records: list[Record]) -> list[str]:
    lines = ["## The server under load", ""]
    for record in records:
        args, latency, memory = record["args"], record["good_latency_ms"], record["rss_mib"]
        statuses = ", ".join(f"{count:,} x {status}" for status, count in sorted(record["statuses"].items()))
        lines += [f"`python benchmarks/serve_soak.py` ({args['clients']} clients for {float(args['seconds']):.0f} s, "
                  f"{float(args['bad_share']):.0%} of requests bad): {machine_line([record])}.", "",
                  f"{record['requests']:,} requests answered: {statuses}; server errors other than 503: "
                  f"{record['server_errors_not_503']}; failed connections: {record['failures']}. Good requests' "
                  f"latency p50 {latency['p50']:.0f} ms, p99 {latency['p99']:.0f} ms; resident memory "
                  f"{memory['start']:.0f} MiB after warm-up, {memory['end']:.0f} MiB at the end.", ""]  # fmt: skip
    return lines


def load_section(records: list[Record]) -> list[str]:
    lines = ["## Serving throughput", ""]
    for record in records:
        header = ["micro-batching", "requests/s", "images/s", "p50 ms", "p99 ms", "errors"]
        rows = [["on" if r["batching"] else "off", f"{r['requests_per_s']:.1f}", f"{r['images_per_s']:.0f}",
                 f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}", str(sum(r["errors"].values()))] for r in record["results"]]  # fmt: skip
        lines += [f"`python benchmarks/serve_load.py` ({record['clients']} clients for {record['seconds']} s, "
                  f"{record['images_per_request']} images a request): {machine_line([record])}.", "",
                  *table(header, rows), ""]  # fmt: skip
    return lines


def other_section(records: list[Record]) -> list[str]:
    """Data loading, export, evaluation time, a change's effect on the step, the Keras reference side by side and the
    diversity rule's calibration, one line each."""
    lines = ["## Data loading, export, evaluation time, step changes, the Keras reference, the diversity rule", ""]
    for record in records:
        machine = machine_line([record])
        if "jpeg_megabytes" in record:
            first, *cached = record["runs"]
            lines.append(f"- Decode cache (`python benchmarks/decode.py --images {record['images']} --size "
                         f"{record['jpeg_size'][0]}x{record['jpeg_size'][1]} --resolution {record['resolution']}`): the "
                         f"first load decodes {record['jpeg_megabytes']:.0f} MB of JPEGs in {first['seconds']:.1f} s, "
                         f"a cached load takes {min(r['seconds'] for r in cached):.1f} s (mostly starting Python); "
                         f"peak memory {first['peak_rss_bytes'] / 2**20:.0f} MiB. {machine}.")  # fmt: skip
        elif "onnxruntime" in record.get("images_per_s", {}):
            rates = record["images_per_s"]
            lines.append(f"- ONNX export (`python benchmarks/export_speed.py --batch {record['batch']}`): ONNX Runtime "
                         f"{rates['onnxruntime']:,.0f} images/s against PyTorch's {rates['pytorch']:,.0f}; largest "
                         f"difference from PyTorch {record['max_abs_diff']:.1e}. {machine}.")  # fmt: skip
        elif "keras_tensorflow" in record:
            ratios = sorted(r["ratio"] for r in record["rounds"])
            lines.append(f"- `{record['preset']}` against the reference's own Keras {record['keras_tensorflow'][0]} + "
                         f"TensorFlow {record['keras_tensorflow'][1]} loop (`python benchmarks/side_by_side.py`, "
                         f"alternating rounds of {record['steps_per_round']} steps): acgan / Keras steps/s = "
                         f"{ratios[len(ratios) // 2]:.2f} (rounds {ratios[0]:.2f} to {ratios[-1]:.2f}). {machine}.")  # fmt: skip
        elif "speed_up_first" in record:
            first, again = record["median_first_s"], record["median_again_s"]
            lines.append(f"- One evaluation of {record['num']:,} {record['dataset']} images with every interval "
                         f"(`python benchmarks/eval_speed.py --dataset {record['dataset']} --num {record['num']} "
                         f"--baseline {record['baseline']}`, {record['repeats']} alternating repeats): "
                         f"{first['current']:.1f} s against {first['baseline']:.1f} s for {record['baseline']} "
                         f"({record['speed_up_first']:.1f}x faster); the next evaluation in the same process "
                         f"{again['current']:.1f} s against {again['baseline']:.1f} s "
                         f"({record['speed_up_again']:.1f}x). {machine}.")  # fmt: skip
        elif "median_ratio" in record:
            args, medians = record["args"], record["medians"]
            shape = ",".join(str(n) for n in args.get("shape", (1, 28, 28)))
            faster = sum(r["after"] > r["before"] for r in record["rounds"])
            lines.append(f"- The step's speed before and after a change (`python benchmarks/ab_step.py --before "
                         f"{record.get('before_commit', args['before'])} --preset {args['preset']} --precision {args['precision']} --shape {shape} "
                         f"--name {args['name']}`, {len(record['rounds'])} alternating rounds): {medians['before']:.2f} -> {medians['after']:.2f} "
                         f"steps/s, median ratio {record['median_ratio']:.3f}x ({faster}/{len(record['rounds'])} "
                         f"rounds faster). {machine}.")  # fmt: skip
        elif "verdicts" in record:
            verdicts = ", ".join(f"{count} {verdict}" for verdict, count in sorted(record["verdicts"].items()))
            lines.append(f"- The MS-SSIM diversity rule on real {record['dataset']} images, half against half "
                         f"(`python benchmarks/diversity_calibration.py --dataset {record['dataset']}`, 3 splits x "
                         f"classes): {verdicts}. {machine}.")  # fmt: skip
    return [*lines, ""]


def calibration_summary(records: list[Record]) -> str:
    """One table over the data sets: for each metric and damage, on how many data sets the metric got worse beyond
    its 95% interval at the strongest level; '(!)' where the damage is one the metric is meant to see and it did not
    respond on some data set."""
    kinds = list(records[0]["moved_at_the_strongest_level"])
    names = list(records[0]["moved_at_the_strongest_level"][kinds[0]])
    rows = []
    for name in names:
        row = [name.replace("_", " ")]
        for kind in kinds:
            moved = sum(bool(r["moved_at_the_strongest_level"][kind][name]) for r in records)
            deaf = any(name in r["not_responding"].get(kind, []) for r in records)
            own = name in records[0]["own_metrics"].get(kind, [])
            row.append(f"{'**' if own else ''}{moved}/{len(records)}{'**' if own else ''}{' (!)' if deaf else ''}")
        rows.append(row)
    datasets = ", ".join(Path(str(r["dataset"])).name for r in records)
    return "\n".join([*table(["metric", *kinds], rows),
                      "", f"*On how many of the data sets ({datasets}) each metric got worse beyond its 95% interval "
                      "at each damage's strongest level; bold: the damage the metric is meant to see, (!) where it "
                      "did not. Made by `python benchmarks/metric_calibration.py`; per level and machine in "
                      "[docs/results.md](docs/results.md).*"])  # fmt: skip


def calibration_section(records: list[Record]) -> list[str]:
    """Each metric on real test images with known damage: does it move the way worse means, beyond its interval?"""
    lines = ["## Do the metrics see what they claim to?", "",
             "`python benchmarks/metric_calibration.py --dataset DATA`: real test images damaged on purpose (variety "
             "removed by keeping few k-means clusters of each class's features, duplicates, blur, noise, labels "
             "swapped), each version scored as if a generator had drawn it. A metric marked * at the strongest "
             "level did not move beyond its 95% bootstrap interval the way worse means.", ""]  # fmt: skip
    for record in sorted(records, key=lambda r: str(r["dataset"])):
        names = list(next(iter(record["rows"].values())))
        header = ["version", *(name.replace("_", " ") for name in names)]
        strongest = {version.split(":")[0]: version for version in record["rows"]}  # the last level of each damage
        rows = []
        for version, metrics in record["rows"].items():
            kind = version.split(":")[0]
            deaf = set(record["not_responding"].get(kind, [])) if strongest[kind] == version else set()
            rows.append([version, *(f"{metrics[name]['generated']:.3f}{' *' if name in deaf else ''}"
                                    for name in names)])  # fmt: skip
        deaf_list = "; ".join(
            f"{kind}: {', '.join(deaf_metrics) or 'none'}" for kind, deaf_metrics in record["not_responding"].items()
        )
        lines += [f"### {Path(str(record['dataset'])).name}, {record['num']:,} test images", "",
                  f"Not responding to the damage they are meant to see: {deaf_list}. {machine_line([record])}.", "",
                  *table(header, rows), ""]  # fmt: skip
    return lines


def demo_caption(record: Record) -> str:
    """The README's caption of the demo's picture, from benchmarks/demo.py's record."""
    metrics = record["metrics"]

    def pair(name: str, digits: int) -> str:
        return f"{metrics[name]['generated']:.{digits}f} (real test images: {metrics[name]['real']:.{digits}f})"

    machine = machine_line([record])
    return (f"*One row per class, one fixed latent per column: the default preset for grey images after {record['epochs']} epochs on "
            f"{record['dataset']} ({record['steps']:,} steps in {record['training_minutes']:.1f} minutes of training, "
            f"{record['precision']['precision']} chosen by `auto`; {machine}). `acgan evaluate` on 10,000 samples: "
            f"conditional accuracy {pair('conditional_accuracy', 3)}, intra-class FD {pair('intra_fd', 1)}, "
            f"recall {pair('recall', 2)}; {len(record['collapsed_classes'])} of {record['classes']} classes "
            f"collapsed, {len(record['less_varied_classes'])} less varied than the real images (MS-SSIM). Made by "
            f"`python benchmarks/demo.py`.*")  # fmt: skip


def demo_section(records: list[Record]) -> list[str]:
    return ["## The demo", "", *(demo_caption(record) for record in records), ""]


RENDERERS: list[tuple[str, Callable[[list[Record]], list[str]]]] = [
    ("demo-", demo_section),
    ("quality-", quality_section),
    ("step-speed-", speed_section),
    ("profile-", profile_section),
    ("metric-calibration-", calibration_section),
    ("crash", crash_section),
    ("disk-full", disk_full_section),
    ("serve-soak", soak_section),
    ("serve-load", load_section),
    ("", other_section),
]


def render(results: Path = RESULTS) -> str:
    """The page: a section per kind of result file present."""
    files = sorted(results.glob("*.json"))
    lines = ["# Results", "",
             "What the benchmarks measured, rendered by `make results` from `benchmarks/results/*.json` (do not "
             "edit by hand: `tests/test_results_page.py` fails when this page and the files disagree). Every figure "
             "names the machine and date it was measured on.", ""]  # fmt: skip
    claimed: set[Path] = set()
    for prefix, renderer in RENDERERS:
        mine = [path for path in files if path.name.startswith(prefix) and path not in claimed]
        claimed |= set(mine)
        if mine:
            lines += renderer([json.loads(path.read_text()) for path in mine])
    return "\n".join(lines).rstrip("\n") + "\n"


README = REPO / "README.md"


def readme_blocks() -> dict[str, tuple[str, Callable[[list[Record]], str]]]:
    """README's generated blocks: name -> (the result files' prefix, what the block shows of them)."""
    return {"demo": ("demo-", lambda records: demo_caption(records[0])),
            "colour screen": ("quality-cifar10-subset-folders-", colour_screen),
            "colour candidates": ("quality-cifar10-subset-folders-", colour_candidates),
            "ranking check": ("quality-cifar10-subset-folders-", lambda records: "\n".join(ranking_check(records))),
            "colour picture": ("quality-cifar10-subset-folders-", colour_picture_caption),
            "grey check": ("quality-", grey_check),
            "metric calibration": ("metric-calibration-", calibration_summary)}  # fmt: skip


def block_markers(name: str) -> tuple[str, str]:
    return f"<!-- generated by make results: {name} -->", f"<!-- end of {name} -->"


def readme(text: str, results: Path = RESULTS) -> str:
    """README.md with its generated blocks (the demo picture's caption, the metrics' calibration) rendered from
    the results; a block whose results are absent is left as it is."""
    for name, (prefix, show) in readme_blocks().items():
        files = sorted(results.glob(f"{prefix}*.json"))
        begin, end = block_markers(name)
        if not files or begin not in text:
            continue
        before, _, rest = text.partition(begin)
        _, _, after = rest.partition(end)
        text = f"{before}{begin}\n{show([json.loads(path.read_text()) for path in files])}\n{end}{after}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    page, front = render(), readme(README.read_text())
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != page or README.read_text() != front:
            sys.exit(f"{PAGE} or {README} differs from benchmarks/results/*.json: run make results")
        print(f"{PAGE} and {README} match the results")
        return
    PAGE.write_text(page)
    README.write_text(front)
    print(f"wrote {PAGE} and {README}'s generated block")


if __name__ == "__main__":
    main()
