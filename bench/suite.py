#!/usr/bin/env python3
"""herd's benchmark suite: every speed figure in one run, one report.

Run it through ``bench/run`` (which installs what it needs, builds herd and
passes the artifacts' paths); ``bench/run --help`` lists the options. This
file only measures and reports:

* proxy: wrk against the demo worker directly, herd's gateway, nginx and
  HAProxy (both sticky on X-Session-ID, with upstream keep-alive), at
  several connection counts, for one session and for 100 sessions over 100
  workers; each figure the median of N runs, the runs interleaved so that
  drifting machine load hits every target alike; and once more at one
  connection with wrk, the proxy and the worker all on one CPU (the
  proxy's own latency, without the cost of waking another vCPU);
* WebSocket: herd-ws-load (bench/src/bin/ws_load.rs) through herd and
  directly;
* acquire: Rust (criterion), C (bench/c_acquire.c), Python, Node;
* cold start and scale: herd-core's spawn bench.

Writes ``results.md``, ``results.json`` and (unless --no-plots) PNG plots
into --out, and prints the Markdown report. Every process it starts is
stopped when it ends, also on failure or Ctrl-C, and is killed by the
kernel if this script dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import glob
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SESSIONS_MANY = 100
TARGETS = ["direct", "herd", "compare", "nginx", "haproxy"]
TARGET_LABEL = {"direct": "worker direct", "herd": "herd", "compare": "herd (HERD_COMPARE)", "nginx": "nginx",
                "haproxy": "HAProxy"}


class BenchError(Exception):
    """A step of the suite failed; the message says which and why."""


# ---------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the suite's process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


class Processes:
    """Long-running processes the suite started; stop() ends all of them."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], log_dir: str, env: dict | None = None) -> subprocess.Popen:
        out = open(os.path.join(log_dir, f"{name}.out"), "wb")
        err = open(os.path.join(log_dir, f"{name}.err"), "wb")
        try:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent
            )
        except OSError as e:
            raise BenchError(f"cannot start {name} ({argv[0]}): {e}") from e
        finally:
            out.close()
            err.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen | None = None, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; one process or all, newest first."""
        for name, p in list(reversed(self.procs)):
            if proc is not None and p is not proc:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(grace)
                except subprocess.TimeoutExpired:
                    print(f"bench: {name} ignored SIGTERM for {grace:.0f}s; killing it", file=sys.stderr)
                    p.kill()
                    p.wait()
            self.procs.remove((name, p))


def read_log(log_dir: str, name: str, stream: str = "err") -> str:
    try:
        with open(os.path.join(log_dir, f"{name}.{stream}"), errors="replace") as f:
            return f.read()[-3000:]
    except OSError:
        return ""


def wait_for(what: str, check, timeout: float = 30.0, proc: subprocess.Popen | None = None, logs=None):
    """Polls `check()` until it returns something truthy; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: the process exited with status {proc.returncode}\n{logs() if logs else ''}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs() if logs else ''}")
        time.sleep(0.02)


def run(argv: list[str], what: str, env: dict | None = None, timeout: float | None = None,
        cpu: int | None = None) -> str:
    """Runs a command to completion (on CPU `cpu` only, if given); returns
    its stdout, or fails with its stderr."""

    def before_exec() -> None:
        _die_with_parent()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, preexec_fn=before_exec
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"{what}: {e}") from e
    if done.returncode != 0:
        raise BenchError(f"{what} failed (status {done.returncode}):\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(address: str, path: str = "/", session: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers={"X-Session-ID": session} if session else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def responds(address: str, session: str | None = None) -> bool:
    try:
        return http_get(address, session=session, timeout=1.0)[0] == 200
    except OSError:
        return False


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User and system CPU time used so far by these processes (all threads)."""
    hz = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / hz
        system += int(fields[12]) / hz
    return user, system


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- machine


def machine() -> dict:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])

    def version(argv: list[str], pattern: str) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "not found"
        m = re.search(pattern, done.stdout + done.stderr)
        return m.group(1) if m else "unknown"

    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "load_average_start": load_average(),
        "nginx": version(["nginx", "-v"], r"nginx/(\S+)"),
        "haproxy": version(["haproxy", "-v"], r"version (\S+)"),
        "wrk": version(["wrk", "-v"], r"wrk (\S+)"),
        "rustc": version(["rustc", "--version"], r"rustc (\S+)"),
        "python": platform.python_version(),
        "node": version(["node", "--version"], r"v(\S+)"),
        "pinned": False,
        "autogroup": _autogroup(),
    }


def _autogroup() -> str:
    """Whether the scheduler groups processes by session (they all share the suite's)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return "on" if f.read().strip() == "1" else "off"
    except OSError:
        return "not built in"


def _os_name() -> str:
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "unknown"


# ---------------------------------------------------------------- proxy


NGINX_CONF = """\
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    # Client connections stay open as long as wrk's (nginx closes them
    # after 1,000 requests by default, herd and HAProxy never do).
    keepalive_requests 100000000;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    # Sticky on the session header, as herd is; keep-alive to the workers
    # with room for every connection wrk can have in flight.
    upstream one {{
        hash $http_x_session_id consistent;
        server {one};
        keepalive 512;
        keepalive_requests 100000000;
    }}
    upstream many {{
        hash $http_x_session_id consistent;
{many}
        keepalive 512;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port_one};
        location / {{
            proxy_pass http://one;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_buffering off;
        }}
    }}
    server {{
        listen 127.0.0.1:{port_many};
        location / {{
            proxy_pass http://many;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_buffering off;
        }}
    }}
}}
"""

# What every proxy adds for the worker (herd always does).
FORWARDED_HEADERS = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]

HAPROXY_CONF = """\
global
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    option forwardfor
    http-reuse always
frontend one
    bind 127.0.0.1:{port_one}
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend one
backend one
    balance hdr(X-Session-ID)
    hash-type consistent
    server w0 {one}
frontend many
    bind 127.0.0.1:{port_many}
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend many
backend many
    balance hdr(X-Session-ID)
    hash-type consistent
{many}
"""


class ProxySetup:
    """herd with 101 bound sessions, and nginx and HAProxy in front of the same workers."""

    def __init__(self, args, procs: Processes, work: str) -> None:
        self.args, self.procs, self.work = args, procs, work

    def start_herd(self, name: str, program: str) -> tuple[subprocess.Popen, str, str]:
        """A herd gateway with the 101 sessions bound; returns it, its address and its admin address."""
        work = self.work
        env = dict(os.environ, HERD_LOG="warn")
        # Sessions never expire and idle workers are never trimmed during the run.
        proc = self.procs.start(
            name,
            [program, "serve", "--demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
             "--min", "1", "--max", str(SESSIONS_MANY + 1), "--ttl", "24h", "--idle-worker-timeout", "24h"],
            work, env)
        logs = lambda: read_log(work, name, "out") + read_log(work, name)  # noqa: E731

        def addresses():
            text = read_log(work, name, "out")
            gw = re.search(r"gateway listening on http://(\S+)", text)
            admin = re.search(r"admin listening on http://(\S+)", text)
            return (gw.group(1), admin.group(1)) if gw and admin else None

        address, admin = wait_for(f"{name}'s listening addresses", addresses, 60, proc, logs)
        # Bind the sessions (each starts a worker) before anything is measured.
        for session in ["bench"] + [f"s-{i}" for i in range(SESSIONS_MANY)]:
            status, body = http_get(address, session=session, timeout=30)
            if status != 200:
                raise BenchError(f"binding session {session} through {name}: HTTP {status} {body[:200]!r}")
        return proc, address, admin

    def start(self) -> None:
        args, work = self.args, self.work
        self.herd, self.herd_addr, self.admin_addr = self.start_herd("herd", args.herd)
        # Another herd build (HERD_COMPARE), in front of its own 101 workers.
        self.targets = [t for t in TARGETS if t != "compare" or args.compare]
        if args.compare:
            self.compare, self.compare_addr, self.compare_admin = self.start_herd("herd-compare", args.compare)
        status, body = http_get(self.admin_addr, "/stats")
        if status != 200:
            raise BenchError(f"herd's admin /stats answered HTTP {status}")
        rows = json.loads(body)["worker_rows"]
        by_session = {r["session"]: r["address"] for r in rows if r.get("session")}
        missing = [s for s in ["bench"] + [f"s-{i}" for i in range(SESSIONS_MANY)] if s not in by_session]
        if missing:
            raise BenchError(f"herd's /stats lists no worker for sessions {missing[:5]}")
        self.worker_one = by_session["bench"]
        self.workers_many = [by_session[f"s-{i}"] for i in range(SESSIONS_MANY)]
        if len(set(self.workers_many)) != SESSIONS_MANY:
            raise BenchError("herd bound the 100 sessions to fewer than 100 workers")

        # nginx
        self.nginx_one, self.nginx_many = free_port(), free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(
                work=work, one=self.worker_one, port_one=self.nginx_one, port_many=self.nginx_many,
                many="\n".join(f"        server {a};" for a in self.workers_many)))
        self.nginx = self.procs.start("nginx", ["nginx", "-p", work, "-c", conf], work)
        # HAProxy
        self.haproxy_one, self.haproxy_many = free_port(), free_port()
        conf = os.path.join(work, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF.format(
                one=self.worker_one, port_one=self.haproxy_one, port_many=self.haproxy_many,
                many="\n".join(f"    server w{i} {a}" for i, a in enumerate(self.workers_many))))
        self.haproxy = self.procs.start("haproxy", ["haproxy", "-db", "-f", conf], work)
        for name, proc, port in [("nginx", self.nginx, self.nginx_one), ("haproxy", self.haproxy, self.haproxy_one)]:
            wait_for(f"{name} to answer on 127.0.0.1:{port}",
                     lambda p=port: responds(f"127.0.0.1:{p}", "bench"), 30, proc,
                     lambda n=name: read_log(work, n))
        self.check_stickiness()

    def url(self, target: str, mode: str) -> str:
        one = mode == "one"
        return "http://" + {
            "direct": self.worker_one,
            "herd": self.herd_addr,
            "compare": getattr(self, "compare_addr", ""),
            "nginx": f"127.0.0.1:{self.nginx_one if one else self.nginx_many}",
            "haproxy": f"127.0.0.1:{self.haproxy_one if one else self.haproxy_many}",
        }[target]

    def pids(self, target: str) -> list[int]:
        """The proxy's own processes (not the workers), for CPU per request."""
        if target == "herd":
            return [self.herd.pid]
        if target == "compare":
            return [self.compare.pid]
        if target == "nginx":
            return [self.nginx.pid] + children(self.nginx.pid)
        if target == "haproxy":
            return [self.haproxy.pid] + children(self.haproxy.pid)
        return []

    def worker_pid(self, admin: str) -> int:
        """The PID of the worker a herd gateway bound the `bench` session to."""
        status, body = http_get(admin, "/stats")
        if status != 200:
            raise BenchError(f"herd's admin /stats at {admin} answered HTTP {status}")
        for row in json.loads(body)["worker_rows"]:
            if row.get("session") == "bench" and row.get("pid"):
                return int(row["pid"])
        raise BenchError(f"herd's /stats at {admin} lists no worker PID for the bench session")

    def check_stickiness(self) -> None:
        """Each proxy sends a session to one worker, and to herd's worker for `bench`."""
        for target in [t for t in self.targets if t != "direct"]:
            for mode, sessions in [("one", ["bench"]), ("many", ["s-1", "s-2", "s-3"])]:
                address = self.url(target, mode)[len("http://"):]
                for session in sessions:
                    pids = set()
                    for _ in range(3):
                        status, body = http_get(address, session=session)
                        if status != 200:
                            raise BenchError(f"{target}: GET / for session {session}: HTTP {status}")
                        pids.add(json.loads(body)["pid"])
                    if len(pids) != 1:
                        raise BenchError(f"{target} sent session {session} to several workers: {pids}")
            # The worker gets the same forwarding headers from every proxy,
            # so it does the same work behind each.
            status, body = http_get(self.url(target, "one")[len("http://"):], "/headers", session="bench")
            seen = json.loads(body)["headers"] if status == 200 else {}
            missing = [h for h in FORWARDED_HEADERS if h not in seen]
            if missing:
                raise BenchError(f"{target} does not send {', '.join(missing)} to the worker (it saw {sorted(seen)})")


def wrk_run(url: str, conns: int, duration: float, sessions: int, cpu: int | None = None) -> dict:
    """One wrk run (on CPU `cpu` only, if given)."""
    threads = 1 if conns == 1 else 2
    out = run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "5s",
         "-s", os.path.join(HERE, "wrk.lua"), url + "/"],
        f"wrk -c{conns} {url}", env=dict(os.environ, SESSIONS=str(sessions)), timeout=duration + 60, cpu=cpu)
    m = re.search(r"^BENCH_JSON (\{.*\})$", out, re.M)
    if not m:
        raise BenchError(f"wrk printed no BENCH_JSON line (bench/wrk.lua):\n{out}")
    r = json.loads(m.group(1))
    errors = sum(r[k] for k in ["connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"])
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_us": r["p50_us"], "p99_us": r["p99_us"], "p999_us": r["p999_us"], "mean_us": r["mean_us"],
        "requests": r["requests"], "errors": errors,
    }


def runs_for(args, conns: int) -> int:
    """Runs per figure: more at one connection, where a run's median mostly
    shows where the scheduler put wrk, the proxy and the worker (BENCHMARKS.md)."""
    return args.runs_one_conn if conns == 1 else args.runs


def bench_proxy(args, setup: ProxySetup) -> list[dict]:
    """Every (mode, connections, target) wrk run, `runs_for` times, interleaved."""
    modes = [("one", 1), ("many", SESSIONS_MANY)]
    samples: dict[tuple, list[dict]] = {}
    rounds = max(runs_for(args, c) for c in args.conns)
    for rep in range(rounds):
        print(f"bench: proxy, round {rep + 1} of {rounds} (load average {load_average()})", flush=True)
        for mode, sessions in modes:
            for conns in args.conns:
                if rep >= runs_for(args, conns):
                    continue
                for target in setup.targets:
                    if mode == "many" and target == "direct":
                        continue  # wrk reaches one address: there is no "direct" to 100 workers
                    url = setup.url(target, mode)
                    if args.warmup > 0:
                        wrk_run(url, conns, args.warmup, sessions)
                    pids = setup.pids(target)
                    u0, s0 = cpu_seconds(pids)
                    r = wrk_run(url, conns, args.duration, sessions)
                    u1, s1 = cpu_seconds(pids)
                    if pids and r["requests"]:
                        r["cpu_user_us"] = (u1 - u0) * 1e6 / r["requests"]
                        r["cpu_sys_us"] = (s1 - s0) * 1e6 / r["requests"]
                    samples.setdefault((mode, conns, target), []).append(r)
    rows = []
    for (mode, conns, target), runs in samples.items():
        row = {"sessions": 1 if mode == "one" else SESSIONS_MANY, "connections": conns, "target": target,
               "runs": len(runs), "errors": sum(r["errors"] for r in runs)}
        for key in ["rps", "p50_us", "p99_us", "p999_us", "cpu_user_us", "cpu_sys_us"]:
            values = [r[key] for r in runs if key in r]
            if values:
                row[key] = statistics.median(values)
        row["rps_runs"] = [round(r["rps"]) for r in runs]
        row["p50_runs"] = [r["p50_us"] for r in runs]
        rows.append(row)
    return rows


def threads_of(pids: list[int]) -> list[int]:
    """Every thread of these processes."""
    tids = []
    for pid in pids:
        with contextlib.suppress(OSError):
            tids += [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    return tids


@contextlib.contextmanager
def pinned(pids: list[int], cpu: int):
    """Runs the block with every thread of `pids` on `cpu` only; puts each
    thread's own CPU set back afterwards (also when the block fails), and
    gives threads started meanwhile (they inherit `cpu`) their process's."""
    saved: dict[int, set[int]] = {}
    try:
        for tid in threads_of(pids):
            with contextlib.suppress(ProcessLookupError):  # the thread just ended
                saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, {cpu})
        for pid in pids:
            if os.sched_getaffinity(pid) != {cpu}:
                raise BenchError(f"could not pin process {pid} to CPU {cpu}")
        yield
    finally:
        for pid in pids:
            for tid in threads_of([pid]):
                cpus = saved.get(tid, saved.get(pid))
                if cpus is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.sched_setaffinity(tid, cpus)


def bench_proxy_one_cpu(args, setup: ProxySetup) -> list[dict]:
    """wrk -c1, the proxy and the session's worker all on one CPU.

    Unpinned, a one-connection round trip on a small VM is mostly the cost of
    waking an idle vCPU, paid on every hop that crosses CPUs, and where the
    scheduler puts the three processes changes from run to run. On one CPU
    each hop is a plain context switch: the round trip is the three
    processes' own work, so this is the proxy's latency itself.
    """
    cpu = min(os.sched_getaffinity(0))
    workers = {"herd": setup.worker_pid(setup.admin_addr)}
    if "compare" in setup.targets:
        workers["compare"] = setup.worker_pid(setup.compare_admin)
    samples: dict[str, list[dict]] = {}
    for rep in range(args.pinned_runs):
        print(f"bench: proxy on one CPU, round {rep + 1} of {args.pinned_runs}", flush=True)
        for target in setup.targets:
            worker = workers.get(target, workers["herd"])
            pids = setup.pids(target)
            url = setup.url(target, "one")
            with pinned(pids + [worker], cpu):
                if args.warmup > 0:
                    wrk_run(url, 1, args.warmup, 1, cpu)
                u0, s0 = cpu_seconds(pids)
                r = wrk_run(url, 1, args.duration, 1, cpu)
                u1, s1 = cpu_seconds(pids)
            if pids and r["requests"]:
                r["cpu_user_us"] = (u1 - u0) * 1e6 / r["requests"]
                r["cpu_sys_us"] = (s1 - s0) * 1e6 / r["requests"]
            samples.setdefault(target, []).append(r)
    rows = []
    for target, runs in samples.items():
        row = {"target": target, "cpu": cpu, "runs": len(runs), "errors": sum(r["errors"] for r in runs)}
        for key in ["rps", "p50_us", "p99_us", "mean_us", "cpu_user_us", "cpu_sys_us"]:
            values = [r[key] for r in runs if key in r]
            if values:
                row[key] = statistics.median(values)
        row["p50_runs"] = [r["p50_us"] for r in runs]
        rows.append(row)
    return rows


def bench_websocket(args, setup: ProxySetup) -> list[dict]:
    samples: dict[str, list[dict]] = {"direct": [], "herd": []}
    for rep in range(args.runs):
        for target in samples:
            address = setup.worker_one if target == "direct" else setup.herd_addr
            out = run([args.ws_load, "--url", f"ws://{address}/", "--header", "X-Session-ID:bench",
                       "--sockets", str(args.ws_sockets), "--duration", str(args.duration),
                       "--warmup", str(args.warmup)], f"herd-ws-load against {target}",
                      timeout=args.duration + args.warmup + 60)
            samples[target].append(json.loads(out.strip().splitlines()[-1]))
    rows = []
    for target, runs in samples.items():
        row = {"target": target, "sockets": args.ws_sockets, "runs": len(runs)}
        for key in ["messages_per_s", "p50_us", "p99_us", "p999_us"]:
            row[key] = statistics.median(r[key] for r in runs)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- acquire, spawn


def bench_acquire(args, work: str) -> dict:
    out: dict = {}
    # Rust: herd-core's criterion bench; the medians from criterion's own estimates.
    home = os.path.join(work, "criterion")
    argv = [args.acquire_bench, "--bench", "--noplot"]
    if args.smoke:
        argv += ["--warm-up-time", "0.2", "--measurement-time", "0.3", "--sample-size", "10"]
    log = run(argv, "herd-core's acquire bench (criterion)", env=dict(os.environ, CRITERION_HOME=home),
              timeout=900)
    rust = {}
    for path in glob.glob(os.path.join(home, "**", "new", "benchmark.json"), recursive=True):
        with open(path) as f:
            full_id = json.load(f)["full_id"]
        with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
            rust[full_id] = json.load(f)["median"]["point_estimate"]
    wanted = {"bound_session/acquire": "rust_bound_acquire_ns",
              "bound_session/acquire_release": "rust_bound_acquire_release_ns",
              "bound_session/acquire_blocking_release": "rust_bound_acquire_blocking_release_ns",
              "new_session_idle_worker/acquire": "rust_new_session_warm_ns"}
    for full_id, key in wanted.items():
        if full_id not in rust:
            raise BenchError(f"criterion wrote no estimate for {full_id} (found {sorted(rust)})\n{log[-2000:]}")
        out[key] = rust[full_id]

    # C: bench/c_acquire.c against libherd from the same build.
    exe = os.path.join(work, "c_acquire")
    run(["cc", "-O2", "-std=c11", "-Wall", "-Wextra", "-pthread", f"-I{ROOT}/include",
         os.path.join(HERE, "c_acquire.c"), f"-L{args.libdir}", "-lherd", f"-Wl,-rpath,{args.libdir}", "-o", exe],
        "compiling bench/c_acquire.c")
    text = run([exe] + (["--quick"] if args.smoke else []), "bench/c_acquire.c",
               env=dict(os.environ, HERD_DEMO_WORKER=args.demo_worker), timeout=900)
    m = re.search(r"^1 thread\s+cpu median\s+([\d.]+) ns/pair.*wall median\s+([\d.]+)", text, re.M)
    if not m:
        raise BenchError(f"bench/c_acquire.c printed no '1 thread' line:\n{text}")
    out["c_acquire_release_cpu_ns"], out["c_acquire_release_wall_ns"] = float(m.group(1)), float(m.group(2))
    two = re.findall(r"^2 threads, two sessions, thread \d\s+cpu median\s+([\d.]+)", text, re.M)
    if two:
        out["c_two_threads_two_sessions_cpu_ns"] = max(float(v) for v in two)

    # Python: the package's own bench, run by the venv's interpreter.
    batches = ["--batches", "5", "--batch-size", "1000"] if args.smoke else ["--batches", "100"]
    text = run([args.python, os.path.join(ROOT, "bindings/python/bench/acquire.py")] + batches,
               "bindings/python/bench/acquire.py", timeout=900)
    m = re.search(r"^acquire\(id\) \+ release\(\)\s+median\s+([\d.]+) µs", text, re.M)
    if not m:
        raise BenchError(f"the Python bench printed no median:\n{text}")
    out["python_acquire_release_ns"] = float(m.group(1)) * 1000
    m = re.search(r"^with acquire\(id\):\s+median\s+([\d.]+) µs", text, re.M)
    if m:
        out["python_with_ns"] = float(m.group(1)) * 1000

    # Node: the package's own bench.
    batches = ["--batches", "5", "--batch-size", "200"] if args.smoke else ["--batches", "200"]
    text = run(["node", os.path.join(ROOT, "bindings/node/bench/acquire.js")] + batches,
               "bindings/node/bench/acquire.js", timeout=900)
    m = re.search(r"median\s+([\d.]+) µs per pair", text)
    if not m:
        raise BenchError(f"the Node bench printed no median:\n{text}")
    out["node_acquire_release_ns"] = float(m.group(1)) * 1000
    return out


def bench_spawn(args) -> dict:
    # The cold start in one process, then each scale in a fresh one: herd's
    # RSS after N sessions would otherwise include what the allocator kept
    # from the runs before it in the same process (14-19 MiB at 1,000
    # between runs of one build, 16.2 MiB alone).
    text = run([args.spawn_bench, "--scale", "", "--cold", str(args.cold)], "herd-core's spawn bench (cold start)",
               timeout=1800)
    for n in args.scale:
        text += run([args.spawn_bench, "--scale", str(n), "--cold", "0"], f"herd-core's spawn bench ({n} sessions)",
                    timeout=1800)

    def number(pattern: str, body: str = text) -> float:
        m = re.search(pattern, body)
        if not m:
            raise BenchError(f"the spawn bench's output has no match for {pattern!r}:\n{text}")
        return float(m.group(1))

    out = {
        "exec_to_ready_ms": number(r"exec-to-ready.*?:\s+([\d.]+) ms"),
        "cold_acquire_ms": number(r"cold acquire, sandbox off:\s+([\d.]+) ms"),
        "cold_acquire_sandbox_ms": number(r"cold acquire, default sandbox.*?:\s+([\d.]+) ms"),
        "scale": [],
    }
    for n in args.scale:
        m = re.search(rf"== {n} concurrent new sessions, max = {n}\n(.*?)(?:\n==|\Z)", text, re.S)
        if not m:
            raise BenchError(f"the spawn bench printed no section for {n} sessions:\n{text}")
        body = m.group(1)
        out["scale"].append({
            "sessions": n,
            "total_ms": number(r"total time:\s+([\d.]+) ms", body),
            "errors": int(number(r"errors:\s+(\d+)", body)),
            "distinct_workers": int(number(r"distinct worker PIDs:\s+(\d+)", body)),
            "host_rss_mib": number(r"herd RSS \(host proc\):\s+([\d.]+) MiB", body),
            "rss_before_mib": number(r"before pool: ([\d.]+) MiB", body),
            "per_worker_kib": number(r"per-worker overhead:\s+([\d.]+) KiB", body),
            "shutdown_ms": number(r"shutdown:\s+([\d.]+) ms", body),
        })
    return out


# ---------------------------------------------------------------- report


def fmt_rps(v) -> str:
    return f"{v:,.0f}" if v is not None else "—"


def fmt_us(v) -> str:
    if v is None:
        return "—"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def goals(results: dict) -> list[tuple[str, str, bool | None]]:
    out = []
    proxy = results.get("proxy") or []

    def row(sessions, conns, target):
        return next((r for r in proxy if r["sessions"] == sessions and r["connections"] == conns
                     and r["target"] == target), None)

    for sessions in (1, SESSIONS_MANY):
        herd = row(sessions, 64, "herd")
        for other in ("nginx", "haproxy"):
            o = row(sessions, 64, other)
            if herd and o:
                out.append((f"herd ≥ {TARGET_LABEL[other]} in requests/s at 64 connections, {sessions} session(s)",
                            f"{fmt_rps(herd['rps'])} vs {fmt_rps(o['rps'])} ({herd['rps'] / o['rps']:.0%})",
                            herd["rps"] >= o["rps"]))
    herd, nginx = row(1, 1, "herd"), row(1, 1, "nginx")
    if herd and nginx:
        out.append(("herd's p50 ≤ nginx's at 1 connection", f"{herd['p50_us']:.0f} vs {nginx['p50_us']:.0f} µs",
                    herd["p50_us"] <= nginx["p50_us"]))
    one_cpu = {r["target"]: r for r in results.get("proxy_one_cpu") or []}
    herd, nginx = one_cpu.get("herd"), one_cpu.get("nginx")
    if herd and nginx and herd.get("mean_us") and nginx.get("mean_us"):
        out.append(("herd's p50 ≤ nginx's at 1 connection, all on one CPU",
                    f"{herd['p50_us']:.0f} vs {nginx['p50_us']:.0f} µs (mean {herd['mean_us']:.1f} vs "
                    f"{nginx['mean_us']:.1f} µs)", herd["p50_us"] <= nginx["p50_us"]))
    spawn = results.get("spawn")
    if spawn:
        diff = spawn["cold_acquire_ms"] - spawn["exec_to_ready_ms"]
        out.append(("cold acquire within 1 ms of the worker's exec-to-ready",
                    f"{spawn['cold_acquire_ms']:.2f} vs {spawn['exec_to_ready_ms']:.2f} ms ({diff:+.2f} ms)",
                    diff <= 1.0))
        big = next((s for s in spawn["scale"] if s["sessions"] == 1000), None)
        if big:
            rss_mb = big["host_rss_mib"] * 1.048576
            out.append(("1,000 concurrent sessions: 0 errors, herd's RSS ≤ 20 MB",
                        f"{big['errors']} errors, {big['host_rss_mib']:.1f} MiB ({rss_mb:.1f} MB)",
                        big["errors"] == 0 and rss_mb <= 20.0))
    return out


# The suite's parts, in the order they run and are reported.
PARTS = ("proxy", "websocket", "acquire", "spawn")


def markdown(results: dict) -> str:
    m = results["machine"]
    # "full run" only when every part ran; `--only` names the parts it ran.
    ran = tuple(p for p in PARTS if p in results.get("parts", PARTS))
    what = f"{results['mode']} run" if ran == PARTS else (
        ("smoke run, " if results["mode"] == "smoke" else "") + f"{' and '.join(ran)} only")
    lines = [f"# herd benchmark results ({what})", "",
             f"{results['started']} · {m['cores']} cores, {m['cpu']}, {m['memory_gib']} GiB, {m['os']}, "
             f"kernel {m['kernel']} · rustc {m['rustc']}, nginx {m['nginx']}, HAProxy {m['haproxy']}, "
             f"wrk {m['wrk']}, Python {m['python']}, Node {m['node']} · herd built `{results['profile']}`", "",
             f"Load average at start {m['load_average_start']}, at end {results.get('load_average_end', '?')}. "
             "Processes not pinned to CPUs but in the one-CPU table; all in the suite's session "
             f"(scheduler autogroups {m.get('autogroup', '?')}; see BENCHMARKS.md).", ""]
    proxy = results.get("proxy")
    if proxy:
        p = results["proxy_settings"]
        lines += ["## Proxy (wrk, GET / of the demo worker)", "",
                  f"Median of {p['runs']} runs of {p['duration_s']} s (after {p['warmup_s']} s warm-up) each, "
                  f"{p.get('runs_one_connection', p['runs'])} runs at 1 connection; "
                  "CPU/request is the proxy's own user + system time.", "",
                  "| sessions | conns | target | requests/s | p50 | p99 | p99.9 | CPU/request | errors |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(proxy, key=lambda r: (r["sessions"], r["connections"], TARGETS.index(r["target"]))):
            cpu = (f"{r['cpu_user_us']:.1f} + {r['cpu_sys_us']:.1f} µs" if "cpu_user_us" in r else "—")
            name = TARGET_LABEL[r["target"]]
            if r["target"] == "herd":
                name = "**herd**"
            lines.append(f"| {r['sessions']} | {r['connections']} | {name} | {fmt_rps(r['rps'])} | "
                         f"{fmt_us(r['p50_us'])} | {fmt_us(r['p99_us'])} | {fmt_us(r['p999_us'])} | {cpu} | "
                         f"{r['errors']} |")
        lines.append("")
    one_cpu = results.get("proxy_one_cpu")
    if one_cpu:
        direct = next((r for r in one_cpu if r["target"] == "direct"), None)
        lines += ["## Proxy on one CPU (wrk -c1, the proxy and the worker pinned to one CPU)", "",
                  f"Median of {one_cpu[0]['runs']} runs. Each hop is a context switch on one CPU, none wakes "
                  "another vCPU: the round trip is the three processes' own work, and the proxy's share is "
                  "its mean minus the worker's direct mean.", "",
                  "| target | p50 | mean | added to direct | requests/s | CPU/request | errors |",
                  "|---|---|---|---|---|---|---|"]
        for r in sorted(one_cpu, key=lambda r: TARGETS.index(r["target"])):
            cpu = (f"{r['cpu_user_us']:.1f} + {r['cpu_sys_us']:.1f} µs" if "cpu_user_us" in r else "—")
            added = (f"{r['mean_us'] - direct['mean_us']:.1f} µs"
                     if direct and r is not direct and r.get("mean_us") and direct.get("mean_us") else "—")
            name = "**herd**" if r["target"] == "herd" else TARGET_LABEL[r["target"]]
            mean = f"{r['mean_us']:.1f} µs" if r.get("mean_us") else "—"
            lines.append(f"| {name} | {fmt_us(r['p50_us'])} | {mean} | {added} | {fmt_rps(r['rps'])} | {cpu} | "
                         f"{r['errors']} |")
        lines.append("")
    ws = results.get("websocket")
    if ws:
        lines += ["## WebSocket (herd-ws-load, echo round trips)", "",
                  "| target | sockets | messages/s | p50 | p99 | p99.9 |", "|---|---|---|---|---|---|"]
        for r in ws:
            lines.append(f"| {TARGET_LABEL[r['target']]} | {r['sockets']} | {fmt_rps(r['messages_per_s'])} | "
                         f"{fmt_us(r['p50_us'])} | {fmt_us(r['p99_us'])} | {fmt_us(r['p999_us'])} |")
        lines.append("")
    acq = results.get("acquire")
    if acq:
        lines += ["## Acquire (median per call)", "", "| figure | median |", "|---|---|",
                  f"| Rust `try_acquire`, bound session (acquire only) | {acq['rust_bound_acquire_ns']:.0f} ns |",
                  f"| Rust `try_acquire` + release, bound | {acq['rust_bound_acquire_release_ns']:.0f} ns |",
                  f"| Rust `acquire_blocking` + release, bound | "
                  f"{acq['rust_bound_acquire_blocking_release_ns']:.0f} ns |",
                  f"| C `herd_acquire` + `herd_release`, bound (thread CPU time; wall) | "
                  f"{acq['c_acquire_release_cpu_ns']:.0f} ns; {acq['c_acquire_release_wall_ns']:.0f} ns |",
                  f"| Python `pool.acquire(id).release()`, bound | {acq['python_acquire_release_ns']:.0f} ns |",
                  f"| Node `(await pool.acquire(id)).release()`, bound | {acq['node_acquire_release_ns']:.0f} ns |",
                  f"| Rust, new session on a warm idle worker | {acq['rust_new_session_warm_ns'] / 1000:.2f} µs |",
                  ""]
    spawn = results.get("spawn")
    if spawn:
        lines += ["## Cold start and scale (herd-core's spawn bench)", "",
                  f"Cold acquire (sandbox off) {spawn['cold_acquire_ms']:.2f} ms; the demo worker's own "
                  f"exec-to-ready {spawn['exec_to_ready_ms']:.2f} ms; with the default sandbox "
                  f"{spawn['cold_acquire_sandbox_ms']:.2f} ms.", "",
                  "| concurrent new sessions (max = N) | total time | errors | workers | herd RSS | "
                  "per worker | shutdown |", "|---|---|---|---|---|---|---|"]
        for s in spawn["scale"]:
            lines.append(f"| {s['sessions']:,} | {s['total_ms']:,.0f} ms | {s['errors']} | "
                         f"{s['distinct_workers']:,} | {s['host_rss_mib']:.1f} MiB | {s['per_worker_kib']:.1f} KiB | "
                         f"{s['shutdown_ms']:,.0f} ms |")
        lines.append("")
    # A smoke run's figures (debug build, one short run) say nothing about the goals.
    g = goals(results) if results["mode"] == "full" else []
    if g:
        lines += ["## Goals", "", "| goal | measured | met |", "|---|---|---|"]
        for name, measured, met in g:
            lines.append(f"| {name} | {measured} | {'yes' if met else '**no**'} |")
        lines.append("")
    return "\n".join(lines)


def plots(results: dict, out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    proxy = results.get("proxy") or []
    colors = {"direct": "#999999", "herd": "#d62728", "compare": "#ff9896", "nginx": "#2ca02c", "haproxy": "#1f77b4"}
    # Proxy plots only when the proxy part ran (`--only` may leave it out).
    proxy_plots = [("rps", "requests/s", "proxy-throughput.png"),
                   ("p99_us", "p99 latency (µs, log scale)", "proxy-p99.png")] if proxy else []
    for metric, ylabel, fname in proxy_plots:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        for ax, sessions in zip(axes, (1, SESSIONS_MANY)):
            for target in TARGETS:
                rows = sorted((r for r in proxy if r["sessions"] == sessions and r["target"] == target),
                              key=lambda r: r["connections"])
                if rows:
                    ax.plot([r["connections"] for r in rows], [r[metric] for r in rows], marker="o",
                            label=TARGET_LABEL[target], color=colors[target], linewidth=2.2 if target == "herd" else 1.4)
            ax.set_xscale("log", base=2)
            ax.set_xticks(results["proxy_settings"]["connections"])
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            if metric != "rps":
                ax.set_yscale("log")
            ax.set_title(f"{sessions} session{'s' if sessions > 1 else ''}"
                         + (f" over {sessions} workers" if sessions > 1 else ", one worker"))
            ax.set_xlabel("wrk connections")
            ax.grid(True, alpha=0.3)
        axes[0].set_ylabel(ylabel)
        axes[0].legend()
        settings = results["proxy_settings"]
        fig.suptitle(f"GET / through each proxy (median of {settings['runs']} runs, "
                     f"{settings.get('runs_one_connection', settings['runs'])} at 1 connection), "
                     f"{results['machine']['cores']} vCPU")
        fig.tight_layout()
        path = os.path.join(out_dir, fname)
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    acq = results.get("acquire")
    if acq:
        labels = ["Rust", "C", "Python", "Node"]
        values = [acq["rust_bound_acquire_blocking_release_ns"], acq["c_acquire_release_wall_ns"],
                  acq["python_acquire_release_ns"], acq["node_acquire_release_ns"]]
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        bars = ax.bar(labels, values, color=["#b7410e", "#555555", "#3776ab", "#3c873a"])
        ax.bar_label(bars, labels=[f"{v:,.0f} ns" for v in values])
        ax.set_yscale("log")
        ax.set_ylabel("ns per acquire + release (log scale)")
        ax.set_title("Bound-session acquire + release, median (wall clock)")
        fig.tight_layout()
        path = os.path.join(out_dir, "acquire.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


# ---------------------------------------------------------------- main


def _interrupted(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="herd's benchmark suite (run it through bench/run)")
    parser.add_argument("--smoke", action="store_true", help="tiny durations, one run each")
    parser.add_argument("--out", required=True, help="directory for results.md, results.json and the plots")
    parser.add_argument("--only", default=",".join(PARTS),
                        help="comma-separated parts to run (default: all)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--profile", required=True, help="the cargo profile the artifacts were built with")
    for name in ["herd", "demo-worker", "ws-load", "acquire-bench", "spawn-bench", "libdir", "python"]:
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--compare", metavar="HERD", help="also measure this other herd binary's gateway")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts in --only: {sorted(unknown)}")
    # One connection gets more runs (see runs_for); the one-CPU part has runs of its own.
    args.runs_one_conn, args.pinned_runs = (1, 1) if args.smoke else (7, 5)
    if args.smoke:
        args.runs, args.duration, args.warmup, args.conns = 1, 1, 0, [1, 16]
        args.ws_sockets, args.scale, args.cold = 8, [20], 3
    else:
        args.runs, args.duration, args.warmup, args.conns = 3, 5, 1, [1, 16, 64, 256]
        args.ws_sockets, args.scale, args.cold = 64, [100, 300, 1000], 40
    def env_ints(name: str) -> list[int] | None:
        raw = os.environ.get(name)
        if not raw:
            return None
        try:
            values = [int(v) for v in raw.split(",")]
        except ValueError:
            parser.error(f"{name}={raw!r}: expected whole numbers separated by commas")
        if min(values) < 1:
            parser.error(f"{name}={raw!r}: every number must be at least 1")
        return values

    args.duration = (env_ints("BENCH_DURATION") or [args.duration])[0]
    # More rounds for a tighter median (every connection count gets them),
    # or fewer connection counts: BENCH_RUNS=20 BENCH_CONNS=1,64.
    if runs := env_ints("BENCH_RUNS"):
        args.runs = args.runs_one_conn = runs[0]
    args.conns = env_ints("BENCH_CONNS") or args.conns
    os.makedirs(args.out, exist_ok=True)

    results: dict = {"mode": "smoke" if args.smoke else "full", "profile": args.profile,
                     "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                     "parts": sorted(parts)}
    procs = Processes()
    # SIGTERM (e.g. from bench/run's trap) unwinds like Ctrl-C, so the finally runs.
    signal.signal(signal.SIGTERM, _interrupted)
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as work:
        try:
            if parts & {"proxy", "websocket"}:
                print(f"bench: starting herd, nginx and HAProxy (load average {load_average()})", flush=True)
                setup = ProxySetup(args, procs, work)
                setup.start()
                if "proxy" in parts:
                    results["proxy_settings"] = {"runs": args.runs, "runs_one_connection": args.runs_one_conn,
                                                 "runs_one_cpu": args.pinned_runs, "duration_s": args.duration,
                                                 "warmup_s": args.warmup, "connections": args.conns,
                                                 "sessions": [1, SESSIONS_MANY]}
                    results["proxy"] = bench_proxy(args, setup)
                    results["proxy_one_cpu"] = bench_proxy_one_cpu(args, setup)
                if "websocket" in parts:
                    print(f"bench: WebSocket (load average {load_average()})", flush=True)
                    results["websocket"] = bench_websocket(args, setup)
                procs.stop()
            if "acquire" in parts:
                print(f"bench: acquire from Rust, C, Python, Node (load average {load_average()})", flush=True)
                results["acquire"] = bench_acquire(args, work)
            if "spawn" in parts:
                print(f"bench: cold start and scale (load average {load_average()})", flush=True)
                results["spawn"] = bench_spawn(args)
        except BenchError as e:
            print(f"bench: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench: interrupted", file=sys.stderr)
            return 130
        finally:
            procs.stop()
    results["load_average_end"] = load_average()
    if not args.smoke:
        results["goals"] = [{"goal": g, "measured": m, "met": met} for g, m, met in goals(results)]
    report = markdown(results)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(report + "\n")
    if not args.no_plots:
        for path in plots(results, args.out):
            print(f"bench: wrote {os.path.relpath(path)}")
    print()
    print(report)
    print(f"bench: wrote {os.path.join(args.out, 'results.md')} and results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
