"""The HTTP API of `acgan serve`, in-process, on an untrained dcgan generator saved as a real checkpoint file."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

from acgan.errors import AcganError
from acgan.sampling import interpolation_latents, load_generator, make_latents, sample, slerp
from acgan.serving import ServeOptions, create_app
from acgan.serving.batcher import MicroBatcher
from tests.helpers import write_checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("serve"), with_eval=True)


@pytest.fixture(scope="module")
def client(weights: Path) -> Iterator[TestClient]:
    app = create_app(load_generator(weights), ServeOptions(max_images=64, max_steps=16, max_rows=4))
    with TestClient(app) as test_client:
        yield test_client


def png(response: Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_health_and_info(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/api/v1/info").json()
    assert info["dataset"] == "fashion-mnist"
    assert info["class_names"][9] == "Ankle boot"
    assert info["image_shape"] == [1, 28, 28]
    assert (info["preset"], info["step"], info["objective"]) == ("dcgan", 123, "tac")
    assert info["training"]["spectral_norm"] is True
    assert info["evaluation"]["metrics"]["conditional_accuracy"]["generated"] == 0.5
    assert info["limits"]["max_images"] == 64


def test_generate_png_is_a_grid_and_deterministic_per_seed(client: TestClient) -> None:
    query = "/api/v1/generate?label=7&n=16&seed=3&scale=1"
    first, again = png(client.get(query)), png(client.get(query))
    assert first.shape == (4 * 30 + 2, 4 * 30 + 2)  # 4 x 4 tiles of 28 px, 2 px padding
    assert np.array_equal(first, again)
    other_seed = png(client.get("/api/v1/generate?label=7&n=16&seed=4&scale=1"))
    assert not np.array_equal(first, other_seed)
    by_name = png(client.get("/api/v1/generate?label=sneaker&n=16&seed=3&scale=1"))
    assert np.array_equal(by_name, first)  # class 7 is Sneaker


def test_generate_npz_matches_python_sampling(client: TestClient, weights: Path) -> None:
    response = client.get("/api/v1/generate?label=Bag&n=5&seed=11&format=npz")
    assert response.status_code == 200
    arrays = np.load(io.BytesIO(response.content))
    assert arrays["images"].shape == (5, 28, 28, 1) and arrays["images"].dtype == np.uint8
    assert arrays["labels"].tolist() == [8] * 5
    assert arrays["seeds"].tolist() == [11, 12, 13, 14, 15]
    trained = load_generator(weights)
    expected = sample(trained.generator, [8] * 5, seed=11)
    from acgan.sampling import to_uint8_hwc

    assert np.array_equal(arrays["images"], to_uint8_hwc(expected))


def test_interpolation_strip_ends_at_the_two_seeds(client: TestClient, weights: Path) -> None:
    response = client.get("/api/v1/interpolate?label=2&seed_a=1&seed_b=2&steps=6&format=npz")
    images = np.load(io.BytesIO(response.content))["images"]
    assert images.shape == (6, 28, 28, 1)
    trained = load_generator(weights)
    from acgan.sampling import to_uint8_hwc

    ends = to_uint8_hwc(
        sample(trained.generator, [2, 2], z=torch.cat([make_latents(1, 100, 1), make_latents(1, 100, 2)]))
    )
    assert np.array_equal(images[0], ends[0]) and np.array_equal(images[-1], ends[1])
    strip = png(client.get("/api/v1/interpolate?label=2&seed_a=1&seed_b=2&steps=6&scale=1"))
    assert strip.shape == (32, 6 * 30 + 2)


def test_class_sweep_holds_the_latent_and_walks_the_classes(client: TestClient) -> None:
    response = client.get("/api/v1/class-sweep?seed=5&rows=2&format=npz")
    arrays = np.load(io.BytesIO(response.content))
    assert arrays["labels"].tolist() == list(range(10)) * 2
    assert arrays["images"].shape == (20, 28, 28, 1)
    grid = png(client.get("/api/v1/class-sweep?seed=5&rows=2&scale=1"))
    assert grid.shape == (2 * 30 + 2, 10 * 30 + 2)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/api/v1/generate?label=10", "label"),
        ("/api/v1/generate?label=-1", "label"),
        ("/api/v1/generate?label=Spaceship", "label"),
        ("/api/v1/generate?n=65", "n"),
        ("/api/v1/generate?n=0", "n"),
        ("/api/v1/generate?seed=1.5", "seed"),
        ("/api/v1/generate?seed=abc", "seed"),
        ("/api/v1/generate?seed=-3", "seed"),
        ("/api/v1/generate?format=gif", "format"),
        ("/api/v1/interpolate?steps=1", "steps"),
        ("/api/v1/interpolate?steps=17", "steps"),
        ("/api/v1/interpolate?seed_b=x", "seed_b"),
        ("/api/v1/class-sweep?rows=5", "rows"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client: TestClient, query: str, field: str) -> None:
    response = client.get(query)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"][0]["loc"] == ["query", field]


TOP = 2**63 - 1  # MAX_SEED
# Every endpoint's bad input, each with the 4xx it must get (never a 5xx): a field's own bounds, what spans
# fields (seed + n - 1, rows x classes), labels, types, and values that overflow.
BAD_REQUESTS = {
    "/api/v1/generate": [
        ("n=0", 422), ("n=65", 422), ("n=abc", 422), ("n=1e3", 422), (f"n={2**70}", 422), ("n=", 422),
        ("seed=-1", 422), (f"seed={TOP + 1}", 422), (f"seed={TOP}&n=2", 422), (f"seed={TOP - 15}&n=17", 422),
        ("seed=1.5", 422), ("seed=nan", 422), ("label=99", 422), ("label=-1", 422), ("label=index:10", 422),
        ("label=index:x", 422), ("label=name:0", 422), ("label=", 422), ("label=%C2%B2", 422), ("label=nope", 422),
        ("format=gif", 422), ("columns=0", 422), ("columns=65", 422), ("scale=0", 422), ("scale=9", 422),
        ("scale=inf", 422),
    ],
    "/api/v1/interpolate": [
        ("steps=1", 422), ("steps=17", 422), ("seed_a=-1", 422), (f"seed_b={TOP + 1}", 422), ("seed_a=x", 422),
        ("label=Sneakers", 422), ("label=index:10", 422), ("format=jpg", 422), ("scale=100", 422),
    ],
    "/api/v1/class-sweep": [
        ("rows=0", 422), ("rows=5", 422), ("rows=x", 422), (f"seed={TOP}&rows=2", 422), (f"seed={TOP + 1}", 422),
        ("seed=-5", 422), ("format=tiff", 422), ("scale=-1", 422),
    ],
    "/api/v1/info": [],
    "/healthz": [],
}  # fmt: skip


@pytest.mark.parametrize(("path", "query", "status"), [(p, q, c) for p, rows in BAD_REQUESTS.items() for q, c in rows])
def test_every_endpoint_answers_bad_input_with_its_4xx(client: TestClient, path: str, query: str, status: int) -> None:
    response = client.get(f"{path}?{query}")
    assert response.status_code == status, (query, response.text[:300])
    field = query.split("=")[0] if "&" not in query else query.split("&")[0].split("=")[0]
    assert field in {d["loc"][-1] for d in response.json()["detail"]}  # the answer names a field it was given


def test_the_bad_input_table_covers_every_endpoint_and_good_edges_pass(client: TestClient) -> None:
    paths = {
        route.path for route in client.app.routes if getattr(route, "path", "").startswith(("/api/v1/", "/healthz"))
    }  # type: ignore[attr-defined]
    assert paths - {"/api/v1/openapi.json"} == set(BAD_REQUESTS)
    for query in (f"/api/v1/generate?seed={TOP - 15}&n=16", f"/api/v1/class-sweep?seed={TOP}&rows=1",
                  f"/api/v1/interpolate?seed_a={TOP}&seed_b=0"):  # fmt: skip
        assert client.get(query).status_code == 200, query


def test_no_request_reaches_a_file_and_bodies_and_huge_urls_are_refused(client: TestClient) -> None:
    for path in ("/../../etc/passwd", "/static/../../pyproject.toml", "/api/v1/generate/../../../etc/passwd"):
        assert client.get(path).status_code == 404
    assert client.post("/api/v1/generate", content=b"x" * 10).status_code in (405, 413)
    assert client.get("/api/v1/generate?label=" + "1" * 5000).status_code == 414


def test_page_is_self_contained(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/api/v1/generate" in page.text and "/api/v1/class-sweep" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN or other outside resource
    schema = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/info", "/api/v1/generate", "/api/v1/interpolate", "/api/v1/class-sweep", "/healthz"} <= set(
        schema["paths"]
    )


def test_micro_batching_joins_concurrent_requests_without_changing_them(weights: Path) -> None:
    trained = load_generator(weights)

    async def scenario(enabled: bool) -> tuple[list[torch.Tensor], int]:
        batcher = MicroBatcher(trained.generator, max_batch=1024, enabled=enabled)
        batcher.start()
        requests = [(make_latents(n, 100, seed), torch.full((n,), seed % 10)) for seed, n in enumerate((3, 1, 8, 5))]
        results = await asyncio.gather(*(batcher.generate(z, y) for z, y in requests))
        await batcher.stop()
        return list(results), batcher.stats.calls

    batched, batched_calls = asyncio.run(scenario(True))
    alone, alone_calls = asyncio.run(scenario(False))
    assert alone_calls == 4
    assert batched_calls < 4  # requests queued while the first one ran shared the next call
    for a, b in zip(batched, alone, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_slerp_ends_and_norm() -> None:
    z_a, z_b = torch.randn(100, generator=torch.Generator().manual_seed(0)), torch.randn(100)
    path = slerp(z_a, z_b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], z_a, atol=1e-5) and torch.allclose(path[-1], z_b, atol=1e-5)
    assert interpolation_latents(100, 1, 2, 7).shape == (7, 100)
    # spherical: the midpoint keeps about the ends' norm, where a straight line would shrink it
    assert path[2].norm() > 0.9 * min(z_a.norm(), z_b.norm())


def test_serve_refuses_a_missing_or_broken_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from acgan.cli import main

    assert main(["serve", "--checkpoint", str(tmp_path / "nowhere")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    assert main(["serve", "--checkpoint", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable safetensors file" in err


def test_bf16_sampling_is_deterministic_and_close_to_fp32(weights: Path) -> None:
    trained = load_generator(weights)
    labels = list(range(10)) * 3
    exact = trained.sample(labels, seed=4)
    fast, again = trained.sample(labels, seed=4, precision="bf16"), trained.sample(labels, seed=4, precision="bf16")
    assert fast.dtype == torch.float32 and torch.equal(fast, again)
    assert (fast - exact).abs().mean() < 0.02  # in [-1, 1]: about 2 grey levels of 255
    with pytest.raises(AcganError, match="precision"):
        ServeOptions(precision="fp16")
