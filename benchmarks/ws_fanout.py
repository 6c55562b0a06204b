"""The live view under load: many WebSocket clients on `/ws/sensors` while readings flow,
and how fast `/health` answers meanwhile.

Three processes on 127.0.0.1, nothing else needed (no Kafka, no PostgreSQL):

- the server: the app `pipeline api` serves, served as it serves it, on the embedded
  pipeline (in-memory log, a SQLite file), with a task publishing valid readings into the
  in-memory log at `--rate`;
- the clients: `--clients` WebSocket connections reading every frame and counting them;
- this process: probes `GET /health` every `--probe-interval` seconds (10 s timeout) and
  samples the server's RSS, then prints the figures, with the server's own: how late its
  event loop ran a 10 ms timer, and its longest garbage collection.

    uv run python benchmarks/ws_fanout.py --clients 500 --rate 300 --duration 30

Every loop is bounded by `--duration`; the child processes are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil

HOST = "127.0.0.1"
UNITS = {
    "temperature": ("celsius", 21.0),
    "humidity": ("percent", 45.0),
    "pressure": ("hPa", 1013.0),
}


# --------------------------------------------------------------------------- the server


async def _publish(pipeline: Any, rate: float, stop: asyncio.Event) -> None:
    """Valid readings into the readings topic at `rate` per second, in 50 ms chunks."""
    from pipeline.domain.sensors import Reading  # noqa: PLC0415

    topic = pipeline.settings.topics.sensor_readings
    per_chunk = max(1, round(rate / 20))
    started, sent = time.monotonic(), 0
    types = list(UNITS)
    while not stop.is_set():
        now = datetime.now(UTC)
        for _ in range(per_chunk):
            kind = types[sent % len(types)]
            unit, base = UNITS[kind]
            sensor = f"{kind[:4]}-{sent % 100:04d}"
            reading = Reading(
                sensor_id=sensor,
                sensor_type=kind,
                value=base + (sent % 7) * 0.5,
                unit=unit,
                timestamp=now,
                location="site-01/floor-1",
            )
            value = await pipeline.reading_codec.encode(reading)
            await pipeline.log.publish(topic, sensor.encode(), value)
            sent += 1
        delay = started + sent / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class LoopWatch:
    """How late the server's event loop runs a 10 ms timer (what every request waits on top
    of its own work), and how long garbage collections hold it."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.gc_pauses: list[float] = []
        self._gc_started = 0.0

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - asked - 0.01)

    def on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    def summary(self) -> dict[str, Any]:
        return {
            "loop_lag_p99_ms": _percentile_ms(self.lags, 0.99),
            "loop_lag_max_ms": _percentile_ms(self.lags, 1.0),
            "gc_pause_max_ms": _percentile_ms(self.gc_pauses, 1.0),
        }


async def serve(args: argparse.Namespace) -> None:
    from pipeline.adapters.sql.migrate import upgrade  # noqa: PLC0415
    from pipeline.entrypoints.api.server import ApiServer, app_for, uvicorn_config  # noqa: PLC0415
    from pipeline.entrypoints.logging import configure_logging  # noqa: PLC0415
    from pipeline.entrypoints.settings import (  # noqa: PLC0415
        DatabaseSettings,
        KafkaSettings,
        RegistrySettings,
        Settings,
    )

    configure_logging("WARNING")  # on stderr: stdout carries the figures
    workdir = tempfile.TemporaryDirectory(prefix="ws-fanout-")
    url = f"sqlite+aiosqlite:///{workdir.name}/bench.db"
    await asyncio.to_thread(upgrade, url)
    # The app `pipeline api` serves, on the embedded log (whatever the environment says).
    settings = Settings(
        kafka=KafkaSettings(), registry=RegistrySettings(), database=DatabaseSettings(url=url)
    )
    app = app_for(settings)
    server = ApiServer(uvicorn_config(app, host=HOST, port=args.port))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(0.05)
    pipeline = app.state.pipeline
    await pipeline.ensure_topics()
    stop = asyncio.Event()
    publisher = asyncio.create_task(_publish(pipeline, args.rate, stop))
    port = server.servers[0].sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    loop_watch = LoopWatch()
    gc.callbacks.append(loop_watch.on_gc)
    watching = asyncio.create_task(loop_watch.watch(stop))
    profile = None
    if args.profile:
        import cProfile  # noqa: PLC0415

        profile = cProfile.Profile()
        profile.enable()
    await serving
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    stop.set()
    await asyncio.gather(publisher, watching)
    gc.callbacks.remove(loop_watch.on_gc)
    print(json.dumps(loop_watch.summary()), flush=True)
    workdir.cleanup()


# --------------------------------------------------------------------------- the clients


async def clients(args: argparse.Namespace) -> None:
    import websockets  # noqa: PLC0415

    url = f"ws://{HOST}:{args.port}/ws/sensors"
    frames = 0
    connected = 0
    refused: dict[str, int] = {}
    deadline = time.monotonic() + args.duration

    async def one() -> None:
        nonlocal frames, connected
        try:
            async with websockets.connect(url, max_queue=None, open_timeout=30) as socket:
                connected += 1
                try:
                    while time.monotonic() < deadline:
                        remaining = deadline - time.monotonic()
                        await asyncio.wait_for(socket.recv(), timeout=max(0.01, remaining))
                        frames += 1
                except (TimeoutError, websockets.ConnectionClosed) as error:
                    if isinstance(error, websockets.ConnectionClosed) and error.rcvd:
                        key = f"{error.rcvd.code} {error.rcvd.reason}"
                        refused[key] = refused.get(key, 0) + 1
                finally:
                    connected -= 1
        except (OSError, websockets.InvalidHandshake, TimeoutError) as error:
            key = type(error).__name__
            refused[key] = refused.get(key, 0) + 1

    tasks = []
    for _ in range(args.clients):
        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(1 / args.connect_rate)
    while time.monotonic() < deadline:
        report = {"t": time.time(), "frames": frames, "connected": connected, "refused": refused}
        print(json.dumps(report), flush=True)
        await asyncio.sleep(1.0)
    await asyncio.gather(*tasks, return_exceptions=True)
    report = {"t": time.time(), "frames": frames, "connected": connected, "refused": refused}
    print(json.dumps({**report, "done": True}), flush=True)


# --------------------------------------------------------------------------- the probe


def _child(*argv: str) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1)


def _stop(child: subprocess.Popen[str] | None) -> None:
    if child is not None and child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _percentile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


@dataclass
class Measures:
    """What the probe loop saw."""

    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    rss_peak: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)


def _probe(
    port: int, server: psutil.Process, clients: subprocess.Popen[str], args: argparse.Namespace
) -> tuple[Measures, float]:
    """Probe /health and sample RSS until the clients are done; return the measures and the
    monotonic time from which they count (all clients connected, plus 2 s)."""
    assert clients.stdout is not None
    os.set_blocking(clients.stdout.fileno(), False)
    measures = Measures(rss_peak=server.memory_info().rss)
    ramp = args.clients / args.connect_rate
    started = time.monotonic()
    measuring_from, end = started + ramp + 2.0, started + ramp + args.duration
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=10.0) as http:
        while time.monotonic() < end:
            sent = time.perf_counter()
            try:
                http.get("/health").raise_for_status()
                if time.monotonic() >= measuring_from:
                    measures.latencies.append(time.perf_counter() - sent)
            except httpx.TimeoutException:
                measures.timeouts += 1
            measures.rss_peak = max(measures.rss_peak, server.memory_info().rss)
            for line in clients.stdout.readlines() or []:
                measures.samples.append({**json.loads(line), "m": time.monotonic()})
            time.sleep(max(0.0, args.probe_interval - (time.perf_counter() - sent)))
    return measures, measuring_from


def main_run(args: argparse.Namespace) -> None:
    profile = ["--profile", args.profile] if args.profile else []
    server = _child("serve", "--rate", str(args.rate), "--port", "0", *profile)
    assert server.stdout is not None
    hello = json.loads(server.stdout.readline())
    port, server_process = hello["port"], psutil.Process(hello["pid"])
    client_process: subprocess.Popen[str] | None = None
    try:
        time.sleep(1.0)
        rss_idle = server_process.memory_info().rss
        ramp = args.clients / args.connect_rate
        client_process = _child(
            *("clients", "--port", str(port), "--clients", str(args.clients)),
            *("--connect-rate", str(args.connect_rate)),
            *("--duration", str(ramp + args.duration)),
        )
        cpu_before = server_process.cpu_times()
        measures, measuring_from = _probe(port, server_process, client_process, args)
        cpu_after = server_process.cpu_times()
    finally:
        _stop(client_process)
        _stop(server)
    # The server's last line: its event loop's lag and garbage-collection pauses.
    assert server.stdout is not None
    last = [line for line in server.stdout.read().splitlines() if line.startswith('{"loop')]
    server_figures = json.loads(last[-1]) if last else {}
    window = [s for s in measures.samples if s["m"] >= measuring_from]
    frames_per_s = 0.0
    if len(window) >= 2:
        first, last = window[0], window[-1]
        frames_per_s = (last["frames"] - first["frames"]) / (last["t"] - first["t"])
    final = measures.samples[-1] if measures.samples else {"connected": 0, "refused": {}}
    cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    latencies, mib = measures.latencies, 1024 * 1024
    report = {
        "clients_asked": args.clients,
        "clients_connected": final["connected"],
        "refused": final["refused"],
        "readings_per_s": args.rate,
        "frames_per_s": round(frames_per_s),
        "frames_per_s_wanted": round(args.rate * final["connected"]),
        "health_probes": len(latencies),
        "health_p50_ms": _percentile_ms(latencies, 0.5),
        "health_p99_ms": _percentile_ms(latencies, 0.99),
        "health_max_ms": _percentile_ms(latencies, 1.0),
        "health_timeouts": measures.timeouts,
        **server_figures,
        "rss_idle_mib": round(rss_idle / mib),
        "rss_peak_mib": round(measures.rss_peak / mib),
        "server_cpu_percent": round(100 * cpu_s / (ramp + args.duration)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    for key, value in report.items():
        print(f"{key:22} {value}")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    s = sub.add_parser("serve")
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--profile")
    c = sub.add_parser("clients")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--clients", type=int, required=True)
    c.add_argument("--connect-rate", type=float, required=True)
    c.add_argument("--duration", type=float, required=True)
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients (500)")
    parser.add_argument("--rate", type=float, default=300.0, help="readings per second (300)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured (30)")
    parser.add_argument(
        "--connect-rate", type=float, default=100.0, help="new connections per second (100)"
    )
    parser.add_argument(
        "--probe-interval", type=float, default=0.1, help="seconds between /health probes"
    )
    parser.add_argument("--profile", help="write the server's cProfile statistics to this file")
    return parser


if __name__ == "__main__":
    arguments = parser().parse_args()
    if arguments.role == "serve":
        asyncio.run(serve(arguments))
    elif arguments.role == "clients":
        asyncio.run(clients(arguments))
    else:
        main_run(arguments)
