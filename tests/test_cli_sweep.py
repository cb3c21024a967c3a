"""The CLI sweep: every command, every option, a table of bad values. None may print a traceback or exit 0.

Options are found by walking the click command tree, so an option added later is swept too: its type gives
generic bad values (out of range, not a number, not finite, not a choice) and BAD_VALUES adds what only
its meaning makes bad (a missing checkpoint, an unwritable output, an unknown class...).
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from acgan.cli import cli, main
from acgan.config import TrainConfig
from acgan.sampling import load_generator
from acgan.training import train
from tests.helpers import forged_onnx, make_folder


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from walk(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def type_bad_values(param: click.Option) -> list[str]:
    """Values every option of this type must refuse."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return ["no-such-choice", ""]
    if isinstance(kind, click.IntRange):
        values = ["abc", "1.5", ""]
        if kind.min is not None:
            values.append(str(kind.min - 1))
        if kind.max is not None:
            values += [str(kind.max + 1), str(kind.max * 10**12)]
        return values
    if isinstance(kind, click.FloatRange):
        values = ["abc", "nan", "-inf", "1e300", "-1e300", "3.5e38"]  # valid Python floats beyond float32
        if kind.min is not None:
            values.append(str(kind.min - 1) if not kind.min_open else str(kind.min))
        values.append("inf" if kind.max is None else str(kind.max + 1))
        return values
    return []


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small trained run and the bad places a user can point the CLI at."""
    root = tmp_path_factory.mktemp("sweep")
    folder = make_folder(root / "shapes", per_class=8, size=16)
    run = root / "run"
    train(TrainConfig(dataset=str(folder), batch_size=8, width=4, steps=1, epochs=None, device="cpu",
                      precision="fp32", tensorboard=False), run, show_progress=False)  # fmt: skip
    one_class = root / "one-class"
    make_folder(one_class, classes=("only",), per_class=4, size=16)
    empty = root / "empty"
    empty.mkdir()
    garbage = root / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)
    text = root / "notes.txt"
    text.write_text("not an image")
    no_checkpoint = root / "no-checkpoint"
    no_checkpoint.mkdir()
    (no_checkpoint / "config.json").write_text("{}")
    existing = root / "exists.png"
    existing.write_bytes(b"precious")
    pointers = {}  # runs whose checkpoints/latest holds a path: followed, it would lead out of the run
    for name, content in (("absolute", str(run.resolve() / "checkpoints" / "step_00000001")),
                          ("dotdot", "../../run/checkpoints/step_00000001"), ("huge", "step_" + "0" * 10**6)):  # fmt: skip
        shutil.copytree(run, root / f"pointer-{name}")
        (root / f"pointer-{name}" / "checkpoints" / "latest").write_text(content)
        pointers[f"pointer_{name}"] = root / f"pointer-{name}"
    forged = {f"forged_{kind}": forged_onnx(root / f"forged-{kind}.onnx", load_generator(run), kind)
              for kind in ("inputs", "shape", "range")}  # fmt: skip
    twins = root / "twins"  # class names equal after Unicode normalisation
    for name in (unicodedata.normalize("NFC", "été"), unicodedata.normalize("NFD", "été"), "hiver"):
        make_folder(twins, classes=(name,), per_class=4, size=16)
    return {"root": root, "folder": folder, "run": run, "one_class": one_class, "empty": empty,
            "garbage": garbage, "text": text, "no_checkpoint": no_checkpoint, "existing": existing,
            "step_folder": run / "checkpoints" / "step_00000001", "twins": twins, **pointers, **forged}  # fmt: skip


def base_arguments(command: tuple[str, ...], places: dict[str, Path], work: Path) -> dict[str, str]:
    """Options that make `command` succeed (checked by test_the_base_commands_succeed)."""
    run, folder = str(places["run"]), str(places["folder"])
    return {
        ("train",): {"--dataset": folder, "--run-dir": str(work / "new-run"), "--steps": "1", "--batch-size": "8",
                     "--width": "4", "--device": "cpu", "--precision": "fp32"},
        ("classifier", "train"): {"--dataset": folder, "--epochs": "1", "--output": str(work / "c.safetensors")},
        ("generate",): {"--checkpoint": run, "--num": "3", "--output": str(work / "x.png")},
        ("evaluate",): {"--checkpoint": run, "--num": "30"},
        ("export",): {"--checkpoint": run, "--output": str(work / "g.onnx")},
        ("info",): {"--checkpoint": run},
        ("serve",): {"--checkpoint": run, "--port": "0"},
        ("summary",): {},
        ("presets",): {},
        ("objectives",): {},
    }[command]  # fmt: skip


def bad_values(option: str, command: tuple[str, ...], places: dict[str, Path]) -> list[str]:
    """What makes a value of `option` bad beyond its type."""
    p = {name: str(path) for name, path in places.items()}
    pointers = [p["pointer_absolute"], p["pointer_dotdot"], p["pointer_huge"]]
    forged = [p["forged_inputs"], p["forged_shape"], p["forged_range"]]  # foreign graphs, copied metadata
    checkpoint = [p["garbage"], p["empty"], p["no_checkpoint"], p["root"] + "/missing", p["text"], "", *pointers,
                  *forged]  # fmt: skip
    return {
        "--checkpoint": checkpoint,
        "--resume": [p["empty"], p["root"] + "/missing", p["text"], p["step_folder"], *pointers],
        "--run-dir": [p["text"], p["run"]],
        "--dataset": ["no-such-dataset", p["empty"], p["one_class"], p["text"], p["root"] + "/missing", "", p["twins"]]
        if command != ("evaluate",) else [p["empty"], p["root"] + "/missing", p["text"], p["one_class"]],
        "--data-dir": [p["root"] + "/missing", p["text"]],
        "--label": ["no-such-class", "99", "-1", "", "²", "1.5", "index:3", "index:-1", "index:", "index:1.0",
                    "name:0", "name:", "ＣＩＲＣＬＥ", "x" * 5000],
        "--output": {
            ("generate",): ["x.txt", p["existing"], "/proc/x.png", "/proc/out/", ""],
            ("export",): ["/proc/g.onnx", p["empty"], p["root"] + "/g.txt", ""],
            ("classifier", "train"): ["/proc/c.safetensors", p["empty"]],
        }.get(command, []),
        "--checkpoint-every": ["abc", "-5", "0min", "nanmin", "infmin", "-1min", ""],
        "--diffaugment": ["no-such-policy", "translation,,cutout", "color,nope"],
        "--host": ["not a host!", "256.0.0.1", ""],
        "--batch-size": ["3", str(2 * 10**9)],
        "--limit": ["1"],
        "--seed": [str(2**64), "-1"],
        "--num": [str(10**10)] if command == ("evaluate",) else [],
        "--max-images": [str(10**10)],
    }.get(option, [])  # fmt: skip


def sweep_cases(places: dict[str, Path]) -> Iterator[tuple[tuple[str, ...], str, str]]:
    for command_path, command in walk(cli):
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag or param.name == "help":
                continue
            option = max(param.opts, key=len)
            values = type_bad_values(param) + bad_values(option, command_path, places)
            for value in dict.fromkeys(values):
                yield command_path, option, value


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` must refuse bad options before it starts; a server that starts fails the case at once."""

    def refuse(self: object, sockets: object = None) -> None:
        raise AssertionError("the server started: the bad value was accepted")

    monkeypatch.setattr("uvicorn.Server.run", refuse)


@pytest.mark.slow
def test_the_base_commands_succeed(places: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   no_server: None) -> None:  # fmt: skip
    """The sweep changes one option of a working command, so a refusal is the bad value's doing."""
    for command_path, _ in walk(cli):
        if command_path == ("serve",):
            with pytest.raises(AssertionError, match="server started"):
                main([*command_path, *flatten(base_arguments(command_path, places, tmp_path))])
            continue
        work = tmp_path / "-".join(command_path)
        work.mkdir()
        code = main([*command_path, *flatten(base_arguments(command_path, places, work))])
        output = capsys.readouterr()
        assert code == 0, (command_path, output.err[-500:])


def flatten(options: dict[str, str]) -> list[str]:
    return [item for pair in options.items() for item in pair]


def test_every_option_refuses_bad_values(places: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], no_server: None) -> None:  # fmt: skip
    failures = []
    cases = list(sweep_cases(places))
    for number, (command_path, option, value) in enumerate(cases):
        work = tmp_path / f"case-{number}"
        work.mkdir()
        options = {**base_arguments(command_path, places, work), option: value}
        args = [*command_path, *flatten(options)]
        try:
            code = main(args)
        except BaseException as exc:
            code = f"{type(exc).__name__}: {exc}"  # type: ignore[assignment]
        output = capsys.readouterr()
        text = output.out + output.err
        error_lines = [line for line in output.err.splitlines() if line.startswith("acgan:")]
        if code == 0 or not isinstance(code, int) or "Traceback" in text or len(error_lines) != 1:
            failures.append(f"acgan {' '.join(args)} -> {code}: {output.err.strip()[-300:]}")
        shutil.rmtree(work, ignore_errors=True)
    assert len(cases) > 150
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)
