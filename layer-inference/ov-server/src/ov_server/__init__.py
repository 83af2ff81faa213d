"""ov-server: OpenVINO GenAI inference backend with an OpenAI-compatible API."""

import sys as _sys

__version__ = "0.1.0"

# Telemetry off, always. Importing openvino initialises its converter's
# telemetry (openvino_telemetry), which writes ~/intel/openvino_ga_cid and
# may send usage events unless CI=true. OpenVINO falls back to a no-op stub
# when that package cannot be imported, so block it before openvino loads.
if "openvino_telemetry" not in _sys.modules:
    _sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
