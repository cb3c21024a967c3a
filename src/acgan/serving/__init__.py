"""Serving a trained generator over HTTP: the FastAPI app, its micro-batcher and the web page."""

from acgan.serving.app import ServeOptions, create_app

__all__ = ["ServeOptions", "create_app"]
