"""Serving a trained generator over HTTP: the FastAPI app, its micro-batcher and the web page."""

from acgan.serving.app import ServeLimits, create_app

__all__ = ["ServeLimits", "create_app"]
