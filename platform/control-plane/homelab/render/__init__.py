"""Derived files. Each renderer is pure: loaded Repo (+ current file text) -> new file text."""
