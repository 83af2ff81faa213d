"""Run OptiLLM with its client key handed over in the environment, not on the command line.

OptiLLM 0.4.0 accepts the client key only as `--optillm-api-key` (OPTILLM_API_KEY in the
environment switches it into local inference), and a flag is visible to every user in `ps` /
/proc/PID/cmdline. start.sh exports the key as HOMELAB_OPTILLM_CLIENT_KEY; this launcher removes it
from the environment and passes it to OptiLLM's own argument parser in-process, so no command line
of the service ever holds it. (OptiLLM runs Flask without the reloader: nothing re-executes argv.)

It also installs `optillm_guard` (same folder): real causes and statuses for failures, no retries
of its own, and real usage totals (see that module).

usage: python scripts/launch.py [OPTILLM FLAGS...]     (with HOMELAB_OPTILLM_CLIENT_KEY set)
"""

from __future__ import annotations

import os
import sys

KEY_VAR = "HOMELAB_OPTILLM_CLIENT_KEY"


def main() -> int:
    key = os.environ.pop(KEY_VAR, "")
    if not key:
        print(f"launch.py: error: {KEY_VAR} is not set (the client key the gateway must send)", file=sys.stderr)
        return 2
    if any(a == "--optillm-api-key" or a.startswith("--optillm-api-key=") for a in sys.argv[1:]):
        print("launch.py: error: pass the client key in the environment, not as --optillm-api-key", file=sys.stderr)
        return 2
    sys.argv = ["optillm", *sys.argv[1:], "--optillm-api-key", key]
    import optillm_guard
    from optillm import server

    optillm_guard.install(server)
    return server.main() or 0


if __name__ == "__main__":
    sys.exit(main())
