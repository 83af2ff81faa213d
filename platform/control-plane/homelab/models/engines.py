"""Per-engine adapters: where a backend's engine reads its models, whether it can load a file, and
what the running engine says about each model.

Two adapters: `OvServer` (layer-inference/ov-server: a registry YAML it hot-reloads) and
`LlamaServer` (layer-inference/llamacpp-server: llama-server's router over a presets INI, re-read
on `GET /models?reload=1`). A backend uses an adapter when its contract declares the adapter's
marker env var (OV_SERVER_REGISTRY, LLAMACPP_SERVER_PRESETS), so a second instance of the same
project (another name, another port) is handled alike. Another engine gets its own class with the
same methods and a line in ENGINES.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from homelab.addresses import base_url
from homelab.errors import InputError
from homelab.load.repo import SPEC_FILE, Repo, Service
from homelab.runtime.environment import compose
from homelab.runtime.paths import RuntimePaths
from homelab.runtime.prepare import clean_env
from homelab.runtime.secrets import load as load_secrets

ADDED_DIR = "added"  # under the engine's model folder: the files `models add` landed


@dataclass(frozen=True)
class Site:
    """One backend's engine on this machine: its contract and the environment it runs with."""

    repo: Repo
    service: Service
    env: dict[str, str]

    @property
    def contract(self) -> str:
        return f"{self.service.rel_dir}/{SPEC_FILE}"

    @property
    def project(self) -> Path:
        run = self.service.spec.run
        return self.repo.root / self.service.rel_dir / (run.uv_project or ".")


@dataclass(frozen=True)
class Entry:
    """A model as the engine's own configuration has it."""

    name: str
    file: str  # a path, or `builtin:NAME`
    size: int | None  # bytes on disk (None: not a file we can measure)


class Engine(Protocol):
    label: str
    marker_env: str  # the contract env var that says a backend runs this engine
    suffixes: tuple[str, ...]  # the model files it takes

    def model_dir(self, site: Site) -> Path: ...
    def check_loadable(self, site: Site, name: str, path: Path) -> None: ...
    def entries(self, site: Site) -> dict[str, Entry]: ...
    def register(self, site: Site, name: str, path: Path) -> None: ...
    def unregister(self, site: Site, name: str) -> str | None: ...
    def live(self, site: Site) -> dict[str, str] | None: ...


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def write_atomic(path: Path, text: str) -> None:
    """Temp file in the same folder, fsync, rename: a reader sees the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OvServer:
    """ov-server: a registry YAML (OV_SERVER_REGISTRY) it re-reads every
    OV_SERVER_RELOAD_INTERVAL seconds; files under OV_SERVER_MODEL_DIR; `ov-server prepare
    --model` loads (and converts, once) one model in a process of its own."""

    label = "ov-server (OpenVINO GenAI)"
    marker_env = "OV_SERVER_REGISTRY"
    suffixes = (".gguf",)
    # What ov-server writes into a registry that does not exist yet (ov_server.registry).
    builtins = ("jerry-chat", "jerry-tiny")

    def registry(self, site: Site) -> Path:
        value = site.env.get("OV_SERVER_REGISTRY")
        if not value:
            raise InputError.one(site.contract, f"{site.service.name} has no OV_SERVER_REGISTRY here "
                                 "(it serves only its built-in models); set it in its env file, e.g. "
                                 "OV_SERVER_REGISTRY=/etc/homelab-llm/ov-models.yaml, and restart it once")
        return Path(value).expanduser()

    def model_dir(self, site: Site) -> Path:
        return Path(site.env.get("OV_SERVER_MODEL_DIR") or "~/.cache/homelab-llm/models").expanduser()

    def _load(self, site: Site) -> CommentedMap:
        path = self.registry(site)
        if not path.exists():
            data = CommentedMap(models=CommentedMap())
            for name in self.builtins:
                data["models"][name] = _flow({"builtin": name})
            return data
        try:
            data = _yaml().load(path.read_text(encoding="utf-8"))
        except Exception as exc:  # ruamel raises many kinds; the message names the line
            raise InputError.one(path, f"cannot parse the registry: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            raise InputError.one(path, "expected a mapping with a `models` mapping")
        return data

    def entries(self, site: Site) -> dict[str, Entry]:
        out = {}
        base = self.registry(site).parent
        for name, spec in self._load(site)["models"].items():
            if spec.get("builtin"):
                out[name] = Entry(name, f"builtin:{spec['builtin']}", None)
                continue
            path = (base / Path(str(spec.get("path", ""))).expanduser()).resolve()
            try:
                size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) \
                    if path.is_dir() else path.stat().st_size
            except OSError:
                size = None
            out[name] = Entry(name, str(path), size)
        return out

    def register(self, site: Site, name: str, path: Path) -> None:
        data = self._load(site)
        data["models"][name] = _flow({"path": str(path)})
        self._write(site, data)

    def unregister(self, site: Site, name: str) -> str | None:
        """Remove `name`; returns its file path when it had one."""
        data = self._load(site)
        spec = data["models"].pop(name, None)
        if spec is None:
            return None
        self._write(site, data)
        return str(spec.get("path")) if spec.get("path") else None

    def _write(self, site: Site, data: CommentedMap) -> None:
        import io

        buf = io.StringIO()
        _yaml().dump(data, buf)
        write_atomic(self.registry(site), buf.getvalue())

    def check_loadable(self, site: Site, name: str, path: Path) -> None:
        """Load the file the way the engine will, in a process of its own, before it is
        registered (`ov-server prepare --model`: also converts a GGUF once, so the engine's own
        load is then quick). Raises InputError naming the file and the engine's reason."""
        check = path.with_name(f".{name}.check.yaml")
        check.write_text(f"models:\n  {name}: {{path: {json.dumps(str(path))}}}\n", encoding="utf-8")
        cmd = ["uv", "run", "--frozen", "--quiet", "--project", str(site.project), "ov-server",
               "prepare", "--model", name, "--registry", str(check)]
        try:
            done = subprocess.run(cmd, cwd=site.project, env={**clean_env(), **site.env},
                                  capture_output=True, text=True, timeout=900,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise InputError.one(path, f"{self.label} did not finish loading it in 900 s") from None
        finally:
            check.unlink(missing_ok=True)
        if done.returncode != 0:
            code = done.returncode
            if code < 0 or code > 128:  # killed by a signal (uv reports 128 + N): OpenVINO crashed on it
                import signal

                number = -code if code < 0 else code - 128
                try:
                    sig = signal.Signals(number).name
                except ValueError:
                    sig = f"signal {number}"
                raise InputError.one(path, f"{self.label} crashed loading it ({sig}): not a model it can load")
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            why = next((ln.split(f"model {name}: ", 1)[1] for ln in lines if f"model {name}: " in ln),
                       lines[-1] if lines else f"exit {done.returncode}")
            raise InputError.one(path, f"{self.label} cannot load it: {why}")

    def live(self, site: Site) -> dict[str, str] | None:
        """{model: state or 'state: error'} from the running engine's /health; None if it does
        not answer."""
        url = base_url(site.repo, site.service, local=True)
        try:
            resp = httpx.get(f"{url}/health", timeout=3.0, trust_env=False)
            body = resp.json()
        except (httpx.HTTPError, ValueError):
            return None
        out = {}
        for model, info in (body.get("models") or {}).items():
            state = str(info.get("state", "?"))
            out[model] = f"{state}: {info['error']}" if info.get("error") else state
        return out


def _run_check(site: Site, label: str, path: Path, argv: list[str], timeout_s: int) -> subprocess.CompletedProcess[str]:
    cmd = ["uv", "run", "--frozen", "--quiet", "--project", str(site.project), *argv]
    try:
        return subprocess.run(cmd, cwd=site.project, env={**clean_env(), **site.env}, capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InputError.one(path, f"{label} did not finish loading it in {timeout_s} s") from None


class LlamaServer:
    """llamacpp-server: llama-server's router mode over a presets INI (LLAMACPP_SERVER_PRESETS,
    llama.cpp's format: one `[NAME]` section per model, `model = PATH`). The router re-reads it on
    `GET /models?reload=1` (measured: added sections listed, removed ones unloaded, nothing
    restarted), and starts a model's child llama-server on `POST /models/load`. The service writes
    the file with its built-in `[jerry-chat-lcpp]` at start; this adapter adds and removes the
    other sections. `llamacpp-server check-model FILE` loads a file in a llama-server of its own."""

    label = "llamacpp-server (llama.cpp llama-server)"
    marker_env = "LLAMACPP_SERVER_PRESETS"
    suffixes = (".gguf",)
    builtin = "jerry-chat-lcpp"  # llamacpp_server.settings.UPSTREAM_ID
    header = ("; llama-server router presets (llamacpp-server). One [NAME] section per model; NAME is the\n"
              "; model the gateway sends. Edited by `homelab models add|rm`; the built-in section is\n"
              "; rewritten from LLAMACPP_SERVER_MODEL at every start.\nversion = 1\n")

    def presets(self, site: Site) -> Path:
        value = site.env.get(self.marker_env)
        if not value:
            raise InputError.one(site.contract, f"{site.service.name} has no LLAMACPP_SERVER_PRESETS here "
                                 "(it serves one model, LLAMACPP_SERVER_MODEL); set it in its env file, e.g. "
                                 "LLAMACPP_SERVER_PRESETS=/etc/homelab-llm/llamacpp-models.ini, and restart it once")
        return Path(value).expanduser()

    def model_dir(self, site: Site) -> Path:
        return Path(site.env.get("LLAMACPP_SERVER_MODEL_DIR") or "~/.cache/homelab-llm/models").expanduser()

    def _load(self, site: Site) -> dict[str, dict[str, str]]:
        """Sections in file order (the same reading as llamacpp_server.presets.parse)."""
        path = self.presets(site)
        if not path.exists():
            return {}
        out: dict[str, dict[str, str]] = {}
        current: dict[str, str] | None = None
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line[0] in ";#":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = out.setdefault(line[1:-1].strip(), {})
                continue
            key, eq, value = line.partition("=")
            if not eq:
                raise InputError.one(f"{path}:{number}", f"expected `key = value` or `[section]`, got {raw!r}")
            if current is not None:
                current[key.strip()] = value.strip()
        return out

    def _write(self, site: Site, sections: dict[str, dict[str, str]]) -> None:
        body = "".join(f"\n[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
                       for name, keys in sections.items())
        write_atomic(self.presets(site), self.header + body)

    def entries(self, site: Site) -> dict[str, Entry]:
        out = {}
        sections = self._load(site)
        if self.builtin not in sections:  # not started yet: `serve` writes it
            out[self.builtin] = Entry(self.builtin, f"builtin:{self.builtin}", None)
        for name, keys in sections.items():
            if name == "*":  # llama.cpp's global section: options, not a model
                continue
            path = Path(keys.get("model", "")).expanduser()
            try:
                size = path.stat().st_size if path.is_file() else None
            except OSError:
                size = None
            out[name] = Entry(name, str(path) if keys.get("model") else "-", size)
        return out

    def register(self, site: Site, name: str, path: Path) -> None:
        sections = self._load(site)
        sections[name] = {"model": str(path.resolve()), "load-on-startup": "true"}
        self._write(site, sections)
        if self._call(site, "GET", "/models?reload=1") is not None:  # running: list it, then load it
            self._call(site, "POST", "/models/load", {"model": name})

    def unregister(self, site: Site, name: str) -> str | None:
        sections = self._load(site)
        keys = sections.pop(name, None)
        if keys is None:
            return None
        self._write(site, sections)
        self._call(site, "GET", "/models?reload=1")  # the router unloads a model gone from the file
        return keys.get("model")

    def check_loadable(self, site: Site, name: str, path: Path) -> None:
        """A llama-server of its own loads the file (`llamacpp-server check-model`, 120 s at most),
        with the settings every model runs with; stopped after. InputError with llama.cpp's reason."""
        done = _run_check(site, self.label, path, ["llamacpp-server", "check-model", str(path),
                                                   "--timeout", "120"], 180)
        if done.returncode != 0:
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            why = lines[-1] if lines else f"exit {done.returncode}"
            why = why.split(f"cannot load {path}: ", 1)[-1].removeprefix("llamacpp-server: error: ")
            raise InputError.one(path, f"{self.label} cannot load it: {why}")

    def _call(self, site: Site, method: str, path: str, body: dict[str, str] | None = None) -> httpx.Response | None:
        """A request to the running router with the gateway's key; None when it does not answer."""
        url = base_url(site.repo, site.service, local=True)
        key = site.env.get("LLAMACPP_SERVER_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            return httpx.request(method, f"{url}{path}", json=body, headers=headers, timeout=30.0,
                                 trust_env=False)
        except httpx.HTTPError:
            return None

    def live(self, site: Site) -> dict[str, str] | None:
        """{model: ok | loading | unloaded | failed: exit N} from the router's `GET /models`;
        a llama-server without presets (one model) has no /models: its /health stands for it."""
        resp = self._call(site, "GET", "/models")
        if resp is None:
            return None
        if resp.status_code in (401, 403):  # running, but not with the key this checkout has
            try:
                names = list(self.entries(site))
            except InputError:
                names = [self.builtin]
            why = (f"failed to ask the router: key refused ({resp.status_code}); it runs with another "
                   "LLAMACPP_SERVER_API_KEY than this checkout's")
            return dict.fromkeys(names, why)
        try:
            data = resp.json().get("data") or [] if resp.status_code == 200 else []
        except ValueError:
            data = []
        if not any("status" in m for m in data):  # one model, no router: /health is its state
            health = self._call(site, "GET", "/health")
            state = "ok" if health is not None and health.status_code == 200 else "loading"
            return {self.builtin: state}
        out = {}
        for model in data:
            status = model["status"]
            value = str(status.get("value", "?"))
            if status.get("failed"):
                out[model["id"]] = f"failed: exit {status.get('exit_code', '?')}"
            else:
                out[model["id"]] = "ok" if value == "loaded" else value
        return out


def _flow(items: dict[str, str]) -> CommentedMap:
    node = CommentedMap(items)
    node.fa.set_flow_style()
    return node


ENGINES: tuple[Engine, ...] = (OvServer(), LlamaServer())


def engine_of(service: Service) -> Engine | None:
    declared = {v.name for v in service.spec.env}
    return next((e for e in ENGINES if e.marker_env in declared), None)


def site_of(repo: Repo, service: Service) -> Site:
    """The backend's engine as it runs on this checkout (`homelab up`'s environment: contract
    defaults, up values, env files)."""
    paths = RuntimePaths(repo.root)  # secrets too: llama-server's /models needs the gateway's key
    return Site(repo, service, compose(repo, paths, service.name, load_secrets(paths)))
