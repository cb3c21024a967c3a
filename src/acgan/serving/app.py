"""The HTTP API and the web page of `acgan serve` (FastAPI).

Every image endpoint is deterministic for its query (image i of seed s uses the latent of seed s + i, as
`acgan generate` does) and goes through the micro-batcher, so concurrent users share generator calls.
No endpoint takes a path: the checkpoint is fixed when the server starts.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import numpy as np
import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from acgan.config import LEGACY_DEFAULTS, MAX_SEED, SERVE_TIMEOUT_S
from acgan.data.dataset import DatasetInfo
from acgan.errors import AcganError
from acgan.labels import resolve_label
from acgan.outputs import npz_bytes
from acgan.precision import PrecisionChoice
from acgan.sampling import (
    TrainedGenerator,
    Truncation,
    interpolation_latents,
    make_latents,
    sampling_precision,
    to_uint8_hwc,
)
from acgan.serving.batcher import MicroBatcher, ServerBusy
from acgan.version import __version__
from acgan.visualize import grid_image

MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class ServeOptions:
    """How the generator is served: bounds on what one request may ask for and take, batching, precision."""

    max_images: int = 256  # images per request (generate: n; class-sweep: rows x classes; interpolate: steps)
    max_steps: int = 64  # interpolation steps
    max_rows: int = 16  # class-sweep rows
    timeout_s: float = 30.0  # a request waiting longer for its images gets 503
    max_batch: int = 1024  # images per generator call
    micro_batching: bool = True
    precision: str = "fp32"  # the generator's arithmetic: fp32 (the same images as `acgan generate`), bf16 or auto

    def __post_init__(self) -> None:
        if self.max_images < 1 or self.max_steps < 2 or self.max_rows < 1:
            raise AcganError("serve limits must be positive (max_steps >= 2)")
        if self.timeout_s not in SERVE_TIMEOUT_S:
            raise AcganError(f"timeout_s must be in {SERVE_TIMEOUT_S}, got {self.timeout_s}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise AcganError(f"precision must be fp32, bf16 or auto, got '{self.precision}'")
        if self.max_batch < self.max_images:
            raise AcganError(f"max_batch ({self.max_batch}) must be at least max_images ({self.max_images})")


def invalid(field: str, message: str, value: object) -> RequestValidationError:
    """A 422 error in FastAPI's own format, naming the query field."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}])


def png_bytes(images: torch.Tensor, columns: int, scale: int) -> bytes:
    """(N, C, H, W) in [-1, 1] -> a PNG grid, `columns` per row, each image upscaled `scale` times."""
    buffer = io.BytesIO()
    grid_image(to_uint8_hwc(images), ncol=columns, scale=scale).save(buffer, format="PNG")
    return buffer.getvalue()


def read_metrics(trained: TrainedGenerator) -> dict[str, Any] | None:
    """The evaluation saved beside the checkpoint's weights (eval.json from `acgan evaluate`), if any."""
    path = trained.source.parent / "eval.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        return None  # not an evaluation written by acgan
    return {"num_samples": report.get("num_samples"), "metrics": report["metrics"]}


@dataclass(frozen=True)
class RequestChecks:
    """Every endpoint's checks beyond a field's own bounds, in one place: each failure is a 422 naming the field.

    Bounds that a single field carries (n, steps, rows, scale, seeds) are FastAPI's Query limits, derived from
    the same ServeOptions; what spans fields (seed + n - 1, rows x classes) and class labels are checked here.
    """

    info: DatasetInfo
    options: ServeOptions

    def label(self, label: str) -> int:
        """The class index of a label (acgan.labels' rule), or a 422 for `label`."""
        try:
            return resolve_label(label, self.info)
        except AcganError as exc:
            raise invalid("label", str(exc), label) from None

    def seeds(self, field: str, seed: int, count: int) -> int:
        """`seed` when seed, ..., seed + count - 1 all lie in 0..MAX_SEED (image i uses seed + i), else a 422."""
        if seed + count - 1 > MAX_SEED:
            raise invalid(field, f"{field} + {count - 1} must be at most {MAX_SEED} (image i uses {field} + i)", seed)
        return seed

    def truncation(self, psi: float | None, mode: str) -> Truncation | None:
        """The truncation a request asks for (none without psi), or a 422 for `truncation`."""
        if psi is None:
            return None
        try:
            return Truncation(psi, mode)
        except AcganError as exc:
            raise invalid("truncation", str(exc), psi) from None

    def sweep_rows(self, rows: int) -> int:
        """`rows` when a class sweep of that many rows stays within max_images, else a 422."""
        if rows * self.info.num_classes > self.options.max_images:
            raise invalid("rows", f"rows x {self.info.num_classes} classes must be at most {self.options.max_images}",
                          rows)  # fmt: skip
        return rows


@dataclass
class Renderer:
    """Turns latents and labels into an HTTP answer: images through the micro-batcher, then a PNG grid or .npz."""

    batcher: MicroBatcher
    info: DatasetInfo
    timeout_s: float

    async def images(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) for (n, z_dim) latents and (n,) labels, within the time limit (else a 503)."""
        try:
            return await asyncio.wait_for(self.batcher.generate(z, labels), timeout=self.timeout_s)
        except ServerBusy as exc:
            raise _Unavailable(f"server busy ({exc}); retry shortly") from None
        except asyncio.TimeoutError:
            raise _Unavailable(f"generation took longer than {self.timeout_s:g} s") from None

    async def respond(self, z: torch.Tensor, labels: torch.Tensor, columns: int, scale: int, fmt: str, name: str,
                      **extra: np.ndarray) -> Response:  # fmt: skip
        images = await self.images(z, labels)
        if fmt == "npz":
            headers = {"Content-Disposition": f'attachment; filename="{name}.npz"'}
            data = npz_bytes(to_uint8_hwc(images), labels.numpy(), self.info.class_names, **extra)
            return Response(data, media_type="application/octet-stream", headers=headers)
        headers = {"Content-Disposition": f'inline; filename="{name}.png"'}
        return Response(png_bytes(images, columns, scale), media_type="image/png", headers=headers)


def create_app(trained: TrainedGenerator, options: ServeOptions | None = None) -> FastAPI:
    """The app serving `trained`: the page, /healthz, /api/v1/info and the image endpoints; its generator runs in
    eval mode on one worker thread behind a micro-batcher."""
    options = options or ServeOptions()
    precision = sampling_precision(trained, options.precision)  # `auto`: measured once per machine, then cached
    batcher = MicroBatcher(trained.generator, max_batch=options.max_batch, max_queued=8 * options.max_batch,
                           enabled=options.micro_batching, precision=precision.precision)  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="acgan",
        version=__version__,
        description=f"Class-conditional images from an AC-GAN trained on {trained.info.name} "
        f"({trained.generator.config.preset}).",
        docs_url=None,  # Swagger UI would load from a CDN; the schema is at openapi_url
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    app.middleware("http")(bound_requests)
    app.add_exception_handler(_Unavailable, _unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(AcganError, _server_error)  # type: ignore[arg-type]
    add_meta_routes(app, trained, options, batcher, precision)
    add_image_routes(app, trained, options, Renderer(batcher, trained.info, options.timeout_s))
    app.state.batcher = batcher
    return app


async def bound_requests(request: Request, call_next: Any) -> Response:
    """Refuse huge URLs and any request body before routing."""
    if len(str(request.url)) > MAX_URL_LENGTH:
        return JSONResponse({"detail": f"URL longer than {MAX_URL_LENGTH} characters"}, status_code=414)
    length = request.headers.get("content-length", "0").strip()
    if not (length.isascii() and length.isdigit()):
        return JSONResponse({"detail": "invalid Content-Length header"}, status_code=400)
    if int(length) > 0:
        return JSONResponse({"detail": "request bodies are not accepted"}, status_code=413)
    response: Response = await call_next(request)
    return response


async def _unavailable(_: Request, exc: _Unavailable) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


async def _server_error(_: Request, exc: AcganError) -> JSONResponse:
    """An AcganError past RequestChecks is the server's fault, never the request's: said as such."""
    return JSONResponse({"detail": f"server error: {exc}"}, status_code=500)


def add_meta_routes(app: FastAPI, trained: TrainedGenerator, options: ServeOptions, batcher: MicroBatcher,
                    precision: PrecisionChoice) -> None:  # fmt: skip
    """The page, /healthz and /api/v1/info."""
    info, config = trained.info, trained.generator.config
    page = resources.files("acgan.serving").joinpath("static/index.html").read_text(encoding="utf-8")
    metrics = read_metrics(trained)

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, str]:
        """Liveness: the generator is loaded and the batcher is running."""
        return {"status": "ok"}

    @app.get("/api/v1/info", tags=["meta"])
    async def api_info() -> dict[str, Any]:
        """What is being served: data set, classes, image shape, preset, training steps, evaluation, options.
        Numbers an evaluation could not compute are null."""
        return {
            "dataset": info.name, "class_names": list(info.class_names), "num_classes": info.num_classes,
            "image_shape": [info.channels, info.resolution, info.resolution], "preset": config.preset,
            "objective": trained.training_facts.get("objective", LEGACY_DEFAULTS["objective"]), "training": trained.training_facts,
            "z_dim": config.z_dim, "step": trained.step, "weights": trained.source.name, "evaluation": metrics,
            "label_rule": "index:N is the class at index N, name:X the class named X; otherwise a class name wins "
                          "over an index (names compared after NFC normalisation, ignoring case when unambiguous)",
            "limits": {"max_images": options.max_images, "max_steps": options.max_steps,
                       "max_rows": options.max_rows, "timeout_s": options.timeout_s},
            "precision": precision.precision, "precision_choice": precision.to_dict(), "batching": {"enabled": options.micro_batching, **batcher.stats.to_dict()},
            "acgan_version": __version__,
        }  # fmt: skip

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)


def add_image_routes(app: FastAPI, trained: TrainedGenerator, options: ServeOptions, renderer: Renderer) -> None:
    """/api/v1/generate, /api/v1/interpolate and /api/v1/class-sweep: their field bounds and RequestChecks."""
    info, z_dim = trained.info, trained.generator.config.z_dim
    check = RequestChecks(info, options)
    label_query = Query("0", description="Class name or index (index:N, name:X; see label_rule in /api/v1/info).")
    seed_query = Query(0, ge=0, le=MAX_SEED, description="Seed: image i uses the latent of seed + i.")
    format_query = Query("png", description="png: one grid picture; npz: uint8 arrays (N, H, W, C) and labels.")
    scale_query = Query(2, ge=1, le=8, description="Upscale each image this many times (png).")
    truncation_query = Query(None, gt=0, le=4, description="The truncation trick's psi: with truncation_mode mean, "
                             "latents pulled toward the mean (0 < psi <= 1); with resample, entries beyond +-psi drawn "
                             "again (0.1..4). Omitted: none.")  # fmt: skip
    mode_query = Query("mean", description="How the truncation works: mean or resample.")

    @app.get("/api/v1/generate", tags=["images"], responses={200: {"content": {"image/png": {}}}})
    async def generate(
        label: str = label_query,
        n: int = Query(16, ge=1, le=options.max_images, description="Number of images."),
        seed: int = seed_query,
        format: Literal["png", "npz"] = format_query,
        columns: int | None = Query(None, ge=1, le=64, description="Images per row [default: about sqrt(n)]."),
        scale: int = scale_query,
        truncation: float | None = truncation_query,
        truncation_mode: Literal["mean", "resample"] = mode_query,
    ) -> Response:
        """`n` images of one class; the same query always gives the same images."""
        index, seed = check.label(label), check.seeds("seed", seed, n)
        truncated = check.truncation(truncation, truncation_mode)
        labels = torch.full((n,), index, dtype=torch.int64)  # (n,)
        z = make_latents(n, z_dim, seed, truncation=truncated)  # (n, z_dim)
        return await renderer.respond(z, labels, columns or math.ceil(math.sqrt(n)), scale,
                                      format, f"{info.name}-{index}-seed{seed}",
                                      seeds=np.arange(seed, seed + n, dtype=np.int64))  # fmt: skip

    @app.get("/api/v1/interpolate", tags=["images"], responses={200: {"content": {"image/png": {}}}})
    async def interpolate(
        label: str = label_query,
        seed_a: int = Query(0, ge=0, le=MAX_SEED, description="Start: the first latent of this seed."),
        seed_b: int = Query(1, ge=0, le=MAX_SEED, description="End: the first latent of this seed."),
        steps: int = Query(8, ge=2, le=options.max_steps, description="Images in the strip, both ends included."),
        format: Literal["png", "npz"] = format_query,
        scale: int = scale_query,
    ) -> Response:
        """A strip from seed_a's latent to seed_b's (spherical interpolation), one class throughout."""
        index = check.label(label)
        seed_a, seed_b = check.seeds("seed_a", seed_a, 1), check.seeds("seed_b", seed_b, 1)
        labels = torch.full((steps,), index, dtype=torch.int64)  # (steps,)
        z = interpolation_latents(z_dim, seed_a, seed_b, steps)  # (steps, z_dim)
        return await renderer.respond(z, labels, steps, scale, format, f"{info.name}-{index}-{seed_a}-to-{seed_b}")

    @app.get("/api/v1/class-sweep", tags=["images"], responses={200: {"content": {"image/png": {}}}})
    async def class_sweep(
        seed: int = seed_query,
        rows: int = Query(1, ge=1, le=options.max_rows, description="Latents (seed, seed + 1, ...), one per row."),
        format: Literal["png", "npz"] = format_query,
        scale: int = scale_query,
        truncation: float | None = truncation_query,
        truncation_mode: Literal["mean", "resample"] = mode_query,
    ) -> Response:
        """Each row: one latent through every class (the AC-GAN paper's fixed-noise grid)."""
        rows = check.sweep_rows(rows)
        seed = check.seeds("seed", seed, rows)
        truncated = check.truncation(truncation, truncation_mode)
        z = make_latents(rows, z_dim, seed, truncation=truncated).repeat_interleave(
            info.num_classes, dim=0
        )  # (rows * K, z_dim)
        labels = torch.arange(info.num_classes).repeat(rows)  # (rows * K,)
        return await renderer.respond(z, labels, info.num_classes, scale, format, f"{info.name}-sweep-seed{seed}")


class _Unavailable(Exception):
    """Answered with 503 and Retry-After."""
