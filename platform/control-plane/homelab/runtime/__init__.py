"""Running the mesh on this machine: `homelab up/down/status/logs/health`.

Contracts in, supervised processes out: programs.py turns the loaded repo into programs,
supervisor_conf.py renders supervisord.conf (pure), lifecycle.py drives supervisord, probe.py
sweeps health endpoints concurrently. See docs/foundation/running.md.
"""
