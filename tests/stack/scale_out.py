"""What the scale-out tests share: the built collector run as the agent (collector/agent.yaml) and as gateways
(collector/gateway.yaml) on free loopback ports, each gateway exporting its traces to a loopback OTLP receiver
of its own (tests/otlp.py), so a test sees which gateway got which spans.

A gateway can be stopped (SIGTERM), killed (SIGKILL) and started again on the same ports mid-test; every
process is stopped on the way out, whatever the test did.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.otlp import OtlpReceiver, running_receiver
from tests.stack.stack_support import (
    COLLECTOR_DIR,
    COLLECTOR_WAIT_SECONDS,
    free_port,
    http_get,
    otelcol_binary,
    poll,
    samples,
    stop,
    wait_until,
)

AGENT_CONFIG = COLLECTOR_DIR / "agent.yaml"
AGENT_DNS_CONFIG = COLLECTOR_DIR / "agent-dns.yaml"
GATEWAY_CONFIG = COLLECTOR_DIR / "gateway.yaml"
PORTS = ("otlp_grpc", "otlp_http", "health", "own_metrics")
BIND_ATTEMPTS = 3


class Collector:
    """One otelcol-aitrack process with `configs` on its own loopback ports; `env`: the configs' variables."""

    def __init__(self, name: str, configs: tuple[Path, ...], workdir: Path, env: dict[str, str]) -> None:
        self.name, self.configs, self.workdir = name, configs, workdir
        self.ports = {port: free_port() for port in PORTS}
        self.env = {**os.environ, **self._port_variables(), **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _port_variables(self) -> dict[str, str]:
        return {
            "AITRACK_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.ports['otlp_grpc']}",
            "AITRACK_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.ports['otlp_http']}",
            "AITRACK_HEALTH_ENDPOINT": f"127.0.0.1:{self.ports['health']}",
            "AITRACK_COLLECTOR_METRICS_HOST": "127.0.0.1",
            "AITRACK_COLLECTOR_METRICS_PORT": str(self.ports["own_metrics"]),
        }

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.{self.starts}.log"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.ports['otlp_grpc']}"

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.ports['otlp_http']}"

    def start(self) -> None:
        """Start (again, on the same ports) and wait for the health check. A first start whose port was
        taken in the meantime (free_port() only finds a port that was free) moves to new ports."""
        for _ in range(BIND_ATTEMPTS):
            self.starts += 1
            args = [str(otelcol_binary()), *(f"--config={config}" for config in self.configs)]
            with self.log.open("wb") as out:
                self.process = subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
            if poll(self.healthy, COLLECTOR_WAIT_SECONDS, self.process):
                return
            if self.starts > 1 or "address already in use" not in self.log.read_text(errors="replace"):
                break
            self.starts = 0
            self.ports = {port: free_port() for port in PORTS}
            self.env.update(self._port_variables())
        wait_until(self.healthy, f"{self.name}'s health check", 0, process=self.process, log=self.log)

    def healthy(self) -> bool:
        return "Server available" in http_get(f"http://127.0.0.1:{self.ports['health']}/")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops a pod: the collector shuts down in order."""
        if self.process is not None:
            stop(self.process)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing is flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def own_metric(self, name: str, **labels: str) -> float:
        """The sum of the collector's own metric `name` over the series with `labels` (0 when none)."""
        text = http_get(f"http://127.0.0.1:{self.ports['own_metrics']}/metrics")
        return sum(s.value for s in samples(text, name) if labels.items() <= s.labels.items())

    def logs(self) -> str:
        """Everything every start of this collector wrote."""
        return "".join(
            (self.workdir / f"{self.name}.{start}.log").read_text(errors="replace")
            for start in range(1, self.starts + 1)
        )


class Gateway(Collector):
    def __init__(self, index: int, workdir: Path, trace_store: OtlpReceiver, env: dict[str, str]) -> None:
        super().__init__(f"gateway-{index}", (GATEWAY_CONFIG,), workdir, env)
        self.trace_store = trace_store
        self.env["AITRACK_TRACE_STORE_ENDPOINT"] = trace_store.endpoint
        self.stored_before_start: set[str] = set()

    def start(self) -> None:
        # The store keeps what earlier runs of this gateway exported; the own metrics start again at 0.
        self.stored_before_start = self.stored_trace_ids()
        super().start()

    def stored_trace_ids(self) -> set[str]:
        return {span.trace_id.hex() for span in self.trace_store.spans()}

    def store_has_all_it_kept(self) -> bool:
        """Every trace this run decided to keep is at the trace store (none waits in the batch processor)."""
        kept = self.own_metric("otelcol_processor_tail_sampling_global_count_traces_sampled", sampled="true")
        return len(self.stored_trace_ids() - self.stored_before_start) == kept


def agent_environment(gateways: list[Gateway], **env: str) -> dict[str, str]:
    """agent.yaml's variables for these gateways (the static list), `env` winning."""
    return {"AITRACK_GATEWAYS": "[" + ", ".join(g.grpc_address for g in gateways) + "]", **env}


@contextmanager
def running_tiers(
    workdir: Path, gateways: int, gateway_env: dict[str, str], agent_env: dict[str, str]
) -> Iterator[tuple[Collector, list[Gateway]]]:
    """`gateways` gateways, each with its own trace-store receiver, and one agent in front, all healthy."""
    with ExitStack() as stack:
        stores = [stack.enter_context(running_receiver()) for _ in range(gateways)]
        tier = [Gateway(index, workdir, store, gateway_env) for index, store in enumerate(stores)]
        for gateway in tier:
            stack.callback(gateway.stop)
            gateway.start()
        # Made once the gateways are up: their ports are final.
        agent = Collector("agent", (AGENT_CONFIG,), workdir, agent_environment(tier, **agent_env))
        stack.callback(agent.stop)
        agent.start()
        yield agent, tier
