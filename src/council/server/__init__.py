"""The HTTP surfaces: OpenAI-compatible /v1, the seed endpoints, health and metrics."""

from council.server.app import create_app

__all__ = ["create_app"]
