"""Observability: the metric names the services export, reading /metrics, and the figures
`homelab top` and the Grafana dashboard show (pure functions, no I/O outside collect.py)."""
