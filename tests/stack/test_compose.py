"""docker-compose.yml checked without a Docker engine: it is a valid Compose file, and it wires the stack.

- The Compose Specification's own JSON schema, as check-jsonschema vendors it (no network at test time).
- `docker compose config` when a Compose v2 client is on the machine (`docker compose`, or the binary in
  DOCKER_COMPOSE_BIN); skipped otherwise, with the reason.
- Every host path it mounts or reads exists; every image is pinned; the collector is the version of the
  builder manifest; host ports don't collide and match the configs; every host name the configs use is a
  service; the demo sends OTLP/HTTP to the collector's HTTP receiver.
Test dependencies: pytest, pyyaml, jsonschema, check-jsonschema.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DEMO_DOCKERFILE = REPO / "docker/demo.Dockerfile"
STACK_DOC = REPO / "docs/stack.md"

COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib"
DEMO_COMMAND = ["otel-aitrack", "demo", "--duration", "0"]
# A tag that names a release: digits first (an optional `v`), e.g. 0.155.0, v3.15.0, 3.11-slim.
VERSION_TAG = re.compile(r"^v?\d+(\.\d+)+([-.+][\w.-]+)?$")
# `${env:NAME:-default}` in collector/config.yaml.
ENV_DEFAULT = re.compile(r"^\$\{env:(?P<name>\w+):-(?P<default>[^}]*)\}$")


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((REPO / relative).read_text())


COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
COLLECTOR_CONFIG = load_yaml("collector/config.yaml")
MANIFEST = load_yaml("collector/builder-config.yaml")
PROMETHEUS_CONFIG = load_yaml("backends/prometheus/prometheus.yml")
TEMPO_CONFIG = load_yaml("backends/tempo/tempo.yaml")
DASHBOARD_PROVIDERS = load_yaml("grafana/provisioning/dashboards/dashboards.yaml")


# --- reading the compose file -------------------------------------------------------------------------


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) of each entry of `volumes:`, short or long syntax."""
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            mounts.append((entry["type"], entry.get("source", ""), entry["target"]))
            continue
        source, target, *_ = entry.split(":")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        mounts.append((kind, source, target))
    return mounts


def bind_sources(service: dict[str, Any]) -> dict[str, Path]:
    """Container path → host path of each bind mount."""
    return {target: REPO / source for kind, source, target in volume_mounts(service) if kind == "bind"}


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) of each `ports:` entry, short (`"H:C"`, `"IP:H:C"`) or long syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((int(entry["published"]), int(entry["target"])))
            continue
        *_, host, container = str(entry).split("/")[0].split(":")
        ports.append((int(host), int(container)))
    return ports


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def env_file(relative: str) -> dict[str, str]:
    lines = (REPO / relative).read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def image_reference(image: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; the tag is "" when there is none."""
    name = image.split("@", 1)[0]
    repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    return repository, tag


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.split(None, 1) for line in lines if line and not line.startswith("#"))
    ]


def collector_default(value: str) -> str:
    """The working default of a `${env:NAME:-default}` setting of collector/config.yaml."""
    match = ENV_DEFAULT.match(value)
    assert match, f"not an ${{env:...:-default}} setting: {value}"
    return match["default"]


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].split("/", 1)[0])


# --- a real Compose implementation, when there is one ---------------------------------------------------


def compose_command() -> list[str] | None:
    """A Compose v2 CLI: DOCKER_COMPOSE_BIN, else the `docker compose` plugin, else `docker-compose` v2."""
    candidates = []
    if os.environ.get("DOCKER_COMPOSE_BIN"):
        candidates.append([os.environ["DOCKER_COMPOSE_BIN"]])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            version = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=30, check=False
            )
        except OSError:
            continue
        # docker-compose 1.x (Python) has no `--short` and predates the Compose Specification.
        if version.returncode == 0 and version.stdout.strip().lstrip("v").startswith("2"):
            return command
    return None


def run_compose(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    # The user's COMPOSE_* settings (another file, profiles, project) must not change what is checked.
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMPOSE_")}
    return subprocess.run(
        [*command, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
        check=False,
    )


# --- a valid Compose file ------------------------------------------------------------------------------


def compose_spec_schema() -> dict[str, Any]:
    """The Compose Specification schema that check-jsonschema vendors (read as data, its code unused)."""
    distribution = importlib.metadata.distribution("check-jsonschema")
    path = Path(str(distribution.locate_file("check_jsonschema/builtin_schemas/vendor/compose-spec.json")))
    assert path.is_file(), f"check-jsonschema {distribution.version} ships no compose-spec.json"
    return json.loads(path.read_text())


def test_compose_file_is_valid_against_the_compose_specification_schema() -> None:
    # Imported here, not at the top: the default (non-stack) run collects this module without it.
    import jsonschema

    schema = compose_spec_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(COMPOSE), key=lambda error: list(error.path))
    messages = [f"{'/'.join(map(str, error.path)) or '(top)'}: {error.message}" for error in errors]
    assert not messages, "\n".join(messages)


def test_the_schema_check_catches_a_broken_service() -> None:
    """Proves the schema really constrains services, so the test above is not vacuous."""
    import jsonschema

    schema = compose_spec_schema()
    broken = {"services": {"grafana": {"image": "grafana/grafana:13.2.3", "port": ["3000:3000"]}}}
    assert not jsonschema.validators.validator_for(schema)(schema).is_valid(broken)


def test_docker_compose_config_accepts_the_file() -> None:
    command = compose_command()
    if command is None:
        pytest.skip(
            "no Compose v2 client: no `docker compose` plugin, DOCKER_COMPOSE_BIN or docker-compose v2"
            " (the JSON-schema test still validates the file)"
        )
    quiet = run_compose(command, "config", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    resolved = run_compose(command, "config", "--format", "json")
    assert resolved.returncode == 0, resolved.stderr
    services = json.loads(resolved.stdout)["services"]
    assert set(services) == set(SERVICES)
    # Compose's own reading of the file agrees with the one the other tests check.
    for name, service in SERVICES.items():
        if "image" in service:
            assert services[name]["image"] == service["image"]
        hosts = sorted(int(port["published"]) for port in services[name].get("ports", []))
        assert hosts == sorted(host for host, _ in published_ports(service))


def test_every_service_depends_only_on_services_of_this_file_without_cycles() -> None:
    def dependencies(name: str) -> list[str]:
        depends_on = SERVICES[name].get("depends_on", [])
        return list(depends_on) if isinstance(depends_on, (list, dict)) else []

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            dep == goal or (dep not in seen and reaches(dep, goal, seen | {dep}))
            for dep in dependencies(start)
        )

    for name in SERVICES:
        assert set(dependencies(name)) <= set(SERVICES), name
        assert not reaches(name, name), f"{name} depends on itself"


# --- every path it reads exists -------------------------------------------------------------------------


def test_every_bind_mounted_host_path_exists() -> None:
    for name, service in SERVICES.items():
        for target, source in bind_sources(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"


def test_bind_mounted_files_are_readable_by_the_containers_non_root_users() -> None:
    """The collector (10001), Prometheus (nobody), Tempo (10001) and Grafana (472) don't own the files."""
    for name, service in SERVICES.items():
        for source in bind_sources(service).values():
            paths = [source, *source.rglob("*")] if source.is_dir() else [source]
            for path in paths:
                mode = path.stat().st_mode
                needed = 0o005 if path.is_dir() else 0o004
                assert mode & needed == needed, f"{name}: {path} is not world-readable"


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = {
        source
        for service in SERVICES.values()
        for kind, source, _ in volume_mounts(service)
        if kind == "volume"
    }
    assert used == declared


def test_env_files_and_build_contexts_exist() -> None:
    for name, service in SERVICES.items():
        for path in service.get("env_file", []):
            assert (REPO / (path if isinstance(path, str) else path["path"])).is_file(), name
        if "build" in service:
            context = REPO / service["build"]["context"]
            assert context.is_dir(), name
            assert (context / service["build"]["dockerfile"]).is_file(), name


# --- pinned versions ------------------------------------------------------------------------------------


def all_images() -> dict[str, str]:
    """Where each image reference comes from → the reference: compose services and the demo's FROM."""
    images = {f"service {name}": service["image"] for name, service in SERVICES.items() if "image" in service}
    for instruction, arguments in dockerfile_instructions(DEMO_DOCKERFILE):
        if instruction == "FROM":
            images[f"{DEMO_DOCKERFILE.name} FROM"] = arguments.split()[0]
    return images


def test_every_image_is_pinned_to_a_version_tag() -> None:
    images = all_images()
    assert len(images) == len(SERVICES)  # the demo is built, every other service has an image
    for where, image in images.items():
        _, tag = image_reference(image)
        assert "$" not in image, f"{where}: {image} is set from the environment"
        assert tag and tag != "latest", f"{where}: {image} has no version tag"
        assert VERSION_TAG.match(tag), f"{where}: {image}'s tag does not name a version"


def test_the_pinning_rule_rejects_floating_references() -> None:
    for image in (
        "grafana/grafana",
        "grafana/grafana:latest",
        "prom/prometheus:main",
        "localhost:5000/tempo",
    ):
        _, tag = image_reference(image)
        assert not (tag and tag != "latest" and VERSION_TAG.match(tag)), image


def test_collector_image_is_the_builder_manifest_version() -> None:
    repository, tag = image_reference(SERVICES["otel-collector"]["image"])
    assert repository == COLLECTOR_IMAGE
    assert tag == MANIFEST["dist"]["version"]


# --- ports ----------------------------------------------------------------------------------------------


def test_published_ports_are_quoted_strings() -> None:
    """Unquoted `HH:MM` is a base-60 number in YAML 1.1 (9090:9090 would become 32702400)."""
    for name, service in SERVICES.items():
        for entry in service.get("ports", []):
            assert isinstance(entry, (str, dict)), f"{name}: {entry!r}"


def test_host_ports_do_not_collide() -> None:
    hosts = [host for service in SERVICES.values() for host, _ in published_ports(service)]
    assert len(hosts) == len(set(hosts)), sorted(hosts)


def test_published_container_ports_are_the_ones_the_configs_listen_on() -> None:
    receivers = COLLECTOR_CONFIG["receivers"]["otlp"]["protocols"]
    collector_listens = {
        port_of(collector_default(receivers["grpc"]["endpoint"])),
        port_of(collector_default(receivers["http"]["endpoint"])),
        port_of(collector_default(COLLECTOR_CONFIG["exporters"]["prometheus"]["endpoint"])),
        port_of(collector_default(COLLECTOR_CONFIG["extensions"]["health_check"]["endpoint"])),
    }
    expected = {
        "otel-collector": collector_listens,
        "prometheus": {9090},  # Prometheus' --web.listen-address default
        "tempo": {TEMPO_CONFIG["server"]["http_listen_port"]},
        "grafana": {3000},  # Grafana's http_port default
        "demo": set(),
    }
    for name, service in SERVICES.items():
        assert {container for _, container in published_ports(service)} == expected[name], name
        assert all(host == container for host, container in published_ports(service)), name


def test_the_stack_doc_lists_exactly_the_published_ports() -> None:
    table = re.findall(r"^\|[^|\n]*\|\s*`?(\d{4,5})`?\s*\|", STACK_DOC.read_text(), re.M)
    published = {host for service in SERVICES.values() for host, _ in published_ports(service)}
    assert {int(port) for port in table} == published


# --- the services find each other -----------------------------------------------------------------------


def referenced_endpoints() -> dict[str, str]:
    """Every `host:port` another component dials, as the configs and this file spell it."""
    grafana_env = env_file("grafana/grafana.env")
    collector_env = environment(SERVICES["otel-collector"])
    demo_env = environment(SERVICES["demo"])
    endpoints = {
        "grafana.env AITRACK_PROMETHEUS_URL": grafana_env["AITRACK_PROMETHEUS_URL"],
        "grafana.env AITRACK_TEMPO_URL": grafana_env["AITRACK_TEMPO_URL"],
        "collector config otlp_http/tempo (default)": collector_default(
            COLLECTOR_CONFIG["exporters"]["otlp_http/tempo"]["endpoint"]
        ),
        "compose otel-collector AITRACK_TEMPO_ENDPOINT": collector_env["AITRACK_TEMPO_ENDPOINT"],
        "compose demo OTEL_EXPORTER_OTLP_ENDPOINT": demo_env["OTEL_EXPORTER_OTLP_ENDPOINT"],
    }
    for job in PROMETHEUS_CONFIG["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                endpoints[f"prometheus.yml job {job['job_name']}"] = f"http://{target}"
    for index, write in enumerate(TEMPO_CONFIG["metrics_generator"]["storage"].get("remote_write", [])):
        endpoints[f"tempo.yaml remote_write[{index}]"] = write["url"]
    return endpoints


def test_every_host_name_the_configs_use_is_a_service() -> None:
    for where, url in referenced_endpoints().items():
        assert urlsplit(url).hostname in SERVICES, f"{where}: {url}"
    assert {"prometheus", "tempo", "otel-collector", "grafana"} <= set(SERVICES)


def test_every_endpoint_the_configs_dial_is_a_port_that_service_listens_on() -> None:
    receivers = COLLECTOR_CONFIG["receivers"]["otlp"]["protocols"]
    telemetry = COLLECTOR_CONFIG["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    tempo_receivers = TEMPO_CONFIG["distributor"]["receivers"]["otlp"]["protocols"]
    listening = {
        "otel-collector": {
            port_of(collector_default(receivers["http"]["endpoint"])),
            port_of(collector_default(receivers["grpc"]["endpoint"])),
            port_of(collector_default(COLLECTOR_CONFIG["exporters"]["prometheus"]["endpoint"])),
            int(collector_default(telemetry["prometheus"]["port"])),
        },
        "prometheus": {9090},
        "tempo": {
            TEMPO_CONFIG["server"]["http_listen_port"],
            port_of(tempo_receivers["http"]["endpoint"]),
            port_of(tempo_receivers["grpc"]["endpoint"]),
        },
    }
    for where, url in referenced_endpoints().items():
        parts = urlsplit(url)
        assert parts.port in listening[parts.hostname], f"{where}: {url}"


def test_demo_sends_otlp_http_to_the_collectors_http_receiver() -> None:
    demo = SERVICES["demo"]
    env = environment(demo)
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    http_receiver = collector_default(COLLECTOR_CONFIG["receivers"]["otlp"]["protocols"]["http"]["endpoint"])
    assert (endpoint.scheme, endpoint.hostname) == ("http", "otel-collector")
    assert endpoint.port == port_of(http_receiver)
    # `otel-aitrack demo` exports with the OTLP/HTTP exporters only: a gRPC setting would be ignored.
    assert env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"] == "otel-aitrack-demo"
    assert int(env["OTEL_METRIC_EXPORT_INTERVAL"]) <= 15000  # panels fill within two minutes
    assert demo["command"] == DEMO_COMMAND
    assert demo["depends_on"]["otel-collector"]["condition"] == "service_started"


def test_collector_runs_the_mounted_config_and_exports_to_tempo() -> None:
    collector = SERVICES["otel-collector"]
    mounts = bind_sources(collector)
    config_path = next(arg.split("=", 1)[1] for arg in collector["command"] if arg.startswith("--config="))
    assert mounts[config_path] == REPO / "collector/config.yaml"
    env = environment(collector)
    assert env["AITRACK_TEMPO_ENDPOINT"] == "http://tempo:4318"
    assert re.fullmatch(r"\$\{AITRACK_TRACE_SAMPLE_PERCENT:-\d+\}|\d+", env["AITRACK_TRACE_SAMPLE_PERCENT"])
    # Every AITRACK_* it sets is one that config.yaml reads.
    config_text = (REPO / "collector/config.yaml").read_text()
    for name in env:
        assert f"${{env:{name}:-" in config_text, name


# --- each backend as the files in this repository expect it ---------------------------------------------


def flag(command: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in command if arg.startswith(f"{name}="))


def test_prometheus_runs_its_config_with_exemplar_storage() -> None:
    prometheus = SERVICES["prometheus"]
    command = prometheus["command"]
    mounts = bind_sources(prometheus)
    assert mounts[flag(command, "--config.file")] == REPO / "backends/prometheus/prometheus.yml"
    assert "--enable-feature=exemplar-storage" in command
    named = {target for kind, _, target in volume_mounts(prometheus) if kind == "volume"}
    assert flag(command, "--storage.tsdb.path") in named


def test_prometheus_loads_the_mounted_alert_rules() -> None:
    mounts = bind_sources(SERVICES["prometheus"])
    rules_file = REPO / "grafana/prometheus/aitrack-rules.yaml"
    rules_targets = [target for target, source in mounts.items() if source == rules_file]
    assert len(rules_targets) == 1
    rule_files = PROMETHEUS_CONFIG.get("rule_files") or []
    if not rule_files:
        pytest.xfail(
            "backends/prometheus/prometheus.yml has no rule_files, so the mounted "
            f"{rules_targets[0]} is not evaluated yet"
        )
    assert any(fnmatch.fnmatch(rules_targets[0], pattern) for pattern in rule_files), rule_files


def test_tempo_runs_its_config_with_its_data_in_a_named_volume() -> None:
    tempo = SERVICES["tempo"]
    config_path = next(arg.split("=", 1)[1] for arg in tempo["command"] if arg.startswith("-config.file="))
    assert bind_sources(tempo)[config_path] == REPO / "backends/tempo/tempo.yaml"
    data_paths = {
        TEMPO_CONFIG["storage"]["trace"]["wal"]["path"],
        TEMPO_CONFIG["storage"]["trace"]["local"]["path"],
        TEMPO_CONFIG["metrics_generator"]["storage"]["path"],
    }
    named = [target for kind, _, target in volume_mounts(tempo) if kind == "volume"]
    for path in data_paths:
        assert any(PurePosixPath(path).is_relative_to(target) for target in named), path


def test_grafana_gets_its_provisioning_dashboards_env_and_anonymous_viewers() -> None:
    grafana = SERVICES["grafana"]
    mounts = bind_sources(grafana)
    assert mounts["/etc/grafana/provisioning"] == REPO / "grafana/provisioning"
    for provider in DASHBOARD_PROVIDERS["providers"]:
        path = provider["options"]["path"]
        assert mounts.get(path) == REPO / "grafana/dashboards", f"nothing mounted at {path}"
    assert grafana["env_file"] == ["grafana/grafana.env"]
    env = environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    # grafana.env's defaults apply: compose's environment: would silently win over them.
    assert not set(env) & set(env_file("grafana/grafana.env"))
    assert all(entry.endswith(":ro") for entry in grafana["volumes"] if isinstance(entry, str)), (
        "Grafana must not write into the repository"
    )


def test_health_checks_probe_each_service_on_its_own_port() -> None:
    probes = {
        "prometheus": "http://127.0.0.1:9090/-/healthy",
        "tempo": f"http://127.0.0.1:{TEMPO_CONFIG['server']['http_listen_port']}/ready",
        "grafana": "http://127.0.0.1:3000/api/health",
    }
    for name, url in probes.items():
        test = SERVICES[name]["healthcheck"]["test"]
        assert url in " ".join(test), name
    # The collector image has no shell, wget or curl: there is nothing to run a probe with.
    assert "healthcheck" not in SERVICES["otel-collector"]


# --- the demo image -------------------------------------------------------------------------------------


def dockerignore_excludes(relative: str) -> bool:
    """Whether .dockerignore keeps `relative` out of the build context (last matching pattern wins)."""
    excluded = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = PurePosixPath(relative).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_demo_image_installs_the_cli_extra_from_a_context_that_holds_it() -> None:
    instructions = dockerfile_instructions(DEMO_DOCKERFILE)
    copied = [
        source
        for instruction, arguments in instructions
        if instruction == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]
    assert copied, "the Dockerfile copies nothing from the repository"
    for source in copied:
        assert (REPO / source).exists(), source
        assert not dockerignore_excludes(source), f".dockerignore leaves {source} out of the context"
    for needed in ("pyproject.toml", "README.md", "otel_aitrack/__init__.py"):
        assert not dockerignore_excludes(needed), needed
    for kept_out in (
        ".git/HEAD",
        "collector/_build/otelcol-aitrack",
        ".venv-ci/bin/python",
        "tests/conftest.py",
    ):
        assert dockerignore_excludes(kept_out), kept_out
    runs = " ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert re.search(r"pip install \"?/tmp/otel-aitrack\[cli\]\"?", runs)
    assert ("USER", "aitrack") in instructions
