"""The Python API takes what users naturally pass and refuses the rest with AcganError (property tests).

`acgan.sample` and `TrainedGenerator.sample`: labels as ints, names, lists, numpy arrays or tensors of any
integer dtype; latents as numpy arrays or tensors of any float dtype. Whatever the types, dtypes, shapes and
values (NaN, infinities, floats beyond float32): valid images, or AcganError, never another exception.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acgan
from acgan.data.dataset import DatasetInfo
from acgan.errors import AcganError
from acgan.sampling import TrainedGenerator, load_generator
from tests.helpers import write_checkpoint

INFO = DatasetInfo("digits", 3, 1, 28, ("1", "2", "Café"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedGenerator:
    return load_generator(write_checkpoint(tmp_path_factory.mktemp("api"), info=INFO))


def test_sample_takes_what_load_generator_returns_and_the_module(trained: TrainedGenerator) -> None:
    from_trained = acgan.sample(trained, [0, 1, 2], seed=4)
    from_module = acgan.sample(trained.generator, [0, 1, 2], seed=4)
    assert from_trained.shape == (3, 1, 28, 28) and torch.equal(from_trained, from_module)
    assert torch.equal(acgan.sample(trained, ["1", "index:1", "café"], seed=4), from_trained)
    z = acgan.make_latents(3, 100, seed=4)
    for latents in (z.double(), z.numpy(), z.numpy().astype(np.float64), z.half().float()):
        assert acgan.sample(trained, np.array([0, 1, 2], dtype=np.uint8), z=latents).shape == (3, 1, 28, 28)
    assert torch.equal(acgan.sample(trained, torch.tensor([0, 1, 2], dtype=torch.int16), z=z.numpy()), from_trained)
    with pytest.raises(AcganError, match="need the data set's facts"):
        acgan.sample(trained.generator, ["1"])
    with pytest.raises(AcganError, match="load_generator"):
        acgan.sample("runs/x", [0])  # type: ignore[arg-type]


def test_non_finite_latents_and_float_labels_are_refused(trained: TrainedGenerator) -> None:
    z = torch.zeros(2, 100)
    for bad in (z.clone().fill_(float("nan")), np.full((2, 100), np.inf), np.full((2, 100), 1e300)):
        with pytest.raises(AcganError, match="finite"):
            trained.sample([0, 1], z=bad)
    for labels in (torch.tensor([0.0, 1.0]), np.array([0.5, 1.0]), [0.0, 1.0], [True, False], torch.tensor([True])):
        with pytest.raises(AcganError, match=r"labels must be"):
            trained.sample(labels)


DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64, np.float16, np.float32, np.float64,
          np.bool_, np.complex64]  # fmt: skip
TORCH = {np.int8: torch.int8, np.int16: torch.int16, np.int32: torch.int32, np.int64: torch.int64,
         np.uint8: torch.uint8, np.float16: torch.float16, np.float32: torch.float32, np.float64: torch.float64,
         np.bool_: torch.bool, np.complex64: torch.complex64}  # fmt: skip


@st.composite
def label_inputs(draw: st.DrawFn) -> Any:
    """Labels as users might pass them: good and bad types, dtypes, shapes and values."""
    values = draw(st.lists(st.integers(-3, 6), min_size=0, max_size=5))
    kind = draw(st.sampled_from(["list", "tuple", "numpy", "torch", "int", "str", "names", "floats", "nested", "none"]))
    if kind in ("numpy", "torch"):
        dtype = draw(st.sampled_from(DTYPES if kind == "numpy" else list(TORCH)))
        array = np.array(values).astype(dtype) if values else np.zeros(0, dtype=dtype)
        if draw(st.booleans()) and array.size:
            array = array.reshape(1, -1)  # 2-D
        return array if kind == "numpy" else torch.from_numpy(array).to(TORCH[dtype])
    return {
        "list": values, "tuple": tuple(values), "int": values[0] if values else 0,
        "str": draw(st.sampled_from(["1", "index:2", "name:Café", "CAFÉ", "7", "", "index:x", "all"])),
        "names": draw(st.lists(st.sampled_from(["1", "2", "café", "nope", "index:0", "0"]), max_size=3)),
        "floats": [float(v) for v in values], "nested": [values], "none": None,
    }[kind]  # fmt: skip


@st.composite
def latent_inputs(draw: st.DrawFn) -> Any:
    """Latents: None, or numpy/torch arrays of various dtypes and shapes, some with NaN, inf or huge values."""
    if draw(st.booleans()):
        return None
    rows = draw(st.integers(0, 4))
    width = draw(st.sampled_from([100, 99, 1]))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32]))
    fill = draw(st.sampled_from([0.5, -2.0, float("nan"), float("inf"), 1e300, 70000.0]))
    array = np.full((rows, width), fill if dtype != np.int32 else 1).astype(dtype)
    return array if draw(st.booleans()) else torch.from_numpy(array)


@given(labels=label_inputs(), z=latent_inputs(), seed=st.sampled_from([0, 5, -1, 2**63 - 1, 2**64, True, 1.5]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_sample_gives_images_or_acgan_error(trained: TrainedGenerator, labels: Any, z: Any, seed: Any) -> None:
    try:
        images = trained.sample(labels, z=z, seed=seed)
    except AcganError:
        return
    assert images.dtype == torch.float32 and images.ndim == 4 and images.shape[1:] == (1, 28, 28)
    assert bool(torch.isfinite(images).all()) and (images.numel() == 0 or float(images.abs().max()) <= 1.0)
