"""ov-server: OpenVINO GenAI inference backend with an OpenAI-compatible API."""

__version__ = "0.1.0"
