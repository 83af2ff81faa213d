"""`homelab models`: add, list and remove the models a backend engine serves.

source.py parses `--from`; download.py brings a file to disk (resumed, verified, landed
atomically); engines.py is the per-engine adapter (where the engine reads models, whether it can
load a file, what it says it serves); contract.py edits the backend contract and renders the
derived files; gateway.py restarts only the gateway; lifecycle.py ties them into add/rm/list.
"""
