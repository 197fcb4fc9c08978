"""A run: one run id, one folder, one Toxiproxy server, many experiments.

    reports/<run-id>/
        index.html, verdicts.json, toxiproxy.log
        experiments/<experiment>/timeline.jsonl, requests.jsonl, verdicts.jsonl, logs/

``HarnessRun`` is what the pytest plugin and the CLI share: it stands
targets up, runs experiments, records verdicts against what was expected,
and writes the report when it closes.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .checks.verdict import Verdict
from .experiment import ExperimentRun, Phases, run_experiment
from .faults.base import Fault
from .judgement import EXPECTED, Expected, Judgement, append_rows, write_file
from .load import LoadSpec
from .probes import Probe
from .runtime import ToxiproxyHost, make_runtime, make_toxiproxy, teardown
from .runtime.base import Runtime
from .runtime.labels import new_run_id
from .runtime.local.processes import sweep_dead_processes
from .topology import Topology, load_topology
from .toxiproxy import ToxiproxyClient

# (verdict, expected), (verdict, "fail", clause), or (verdict, ("fail", clause)) as a case table holds it
Expectation = tuple[Verdict, Expected] | tuple[Verdict, Expected, str] | tuple[Verdict, tuple[Expected, str]]


@dataclass
class HarnessRun:
    reports_dir: Path
    runtime: str = "local"
    run_id: str = field(default_factory=new_run_id)
    rows: list[Judgement] = field(default_factory=list)
    _server: ToxiproxyHost | None = None
    _client: ToxiproxyClient | None = None
    _count: int = 0

    @property
    def folder(self) -> Path:
        return self.reports_dir / self.run_id

    def open(self) -> "HarnessRun":
        """Sweeps what dead runs left, then starts this run's Toxiproxy: a
        process on 127.0.0.1, or for docker a container on the run's own
        network (which also sweeps dead runs' containers and networks)."""
        sweep_dead_processes(keep_run=self.run_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._server = make_toxiproxy(self.runtime, run_id=self.run_id, log_path=self.folder / "toxiproxy.log")
        teardown.register(self._server)
        self._client = self._server.start()
        return self

    def close(self) -> None:
        """Stops Toxiproxy, writes verdicts.json and the HTML report."""
        if self._server is not None:
            self._server.stop()
            teardown.unregister(self._server)
        if self.folder.exists():
            write_file(self.folder, self.rows)
            from .report import render_index, render_run

            render_run(self.folder)
            render_index(self.reports_dir)

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        if self._client is None:
            raise RuntimeError("the run is not open")
        return self._client

    @contextlib.contextmanager
    def deployed(self, target: str | Path | Topology, *, variant: str = "correct", name: str = "deploy") -> Iterator[Runtime]:
        """Stands a target up for the block and always takes it down."""
        topo = target if isinstance(target, Topology) else load_topology(target)
        topo = topo.with_variant(variant)
        self._count += 1
        folder = self.folder / "experiments" / name
        runtime = make_runtime(
            self.runtime, topo, run_id=self.run_id, toxiproxy=self.toxiproxy,
            log_dir=folder / "logs", prefix=f"{self.run_id}.{self._count}",
        )
        runtime.up()
        try:
            yield runtime
        finally:
            runtime.down()

    def experiment(
        self,
        target: str | Path | Topology,
        *,
        name: str,
        variant: str = "correct",
        fault: Fault | None,
        load: LoadSpec,
        phases: Phases = Phases(),
        probes: Any = None,
        probe_interval_s: float = 0.5,
        settled: Any = None,
    ) -> ExperimentRun:
        """Stands the target up, runs the phases, takes it down, returns the frames.

        ``probes`` may be a callable runtime -> list[Probe], since addresses
        exist only once the target is up; ``settled`` a callable runtime ->
        (callable -> bool) that the drain phase polls."""
        name = self._unused_name(_folder_name(name))
        with self.deployed(target, variant=variant, name=name) as runtime:
            chosen: list[Probe] = probes(runtime) if callable(probes) else list(probes or [])
            return run_experiment(
                name=name, runtime=runtime, load=load, fault=fault, phases=phases,
                folder=self.folder / "experiments" / name, probes=chosen, probe_interval_s=probe_interval_s,
                settled=settled(runtime) if settled else None,
            )

    def _unused_name(self, name: str) -> str:
        """The name, or name-2, name-3 ...: an experiment run twice under one name
        in a run would otherwise append to the first one's timeline and mix both."""
        taken = self.folder / "experiments"
        chosen, n = name, 1
        while (taken / chosen).exists():
            n += 1
            chosen = f"{name}-{n}"
        return chosen

    def judge(self, run: ExperimentRun, expectations: list[Expectation]) -> list[Judgement]:
        """Records each verdict with what was expected (and the clause a broken variant
        must break): in the experiment's verdicts.jsonl at once (a killed run keeps it),
        in verdicts.json when the run closes."""
        judgements = [
            Judgement(experiment=run.name, target=run.target, variant=run.variant, broken=run.broken,
                      fault=run.fault, verdict=v, expected=exp, expected_clause=clause)
            for v, exp, clause in map(_expectation, expectations)
        ]
        append_rows(run.folder, judgements)
        self.rows.extend(judgements)
        return judgements

    def expect(self, run: ExperimentRun, expectations: list[Expectation]) -> list[Judgement]:
        """Judges, then fails (AssertionError with every check's figures) unless all went as expected."""
        judgements = self.judge(run, expectations)
        if not all(j.as_expected for j in judgements):
            raise AssertionError(f"{run.name} ({run.target}, variant {run.variant}):\n{explain(judgements)}")
        return judgements


def _expectation(entry: Expectation) -> tuple[Verdict, Expected, str | None]:
    """(verdict, expected, clause or None) of one expectation. A clause is expected
    only of a fail: it names the promise the broken variant must be caught breaking."""
    verdict, *wanted = entry
    if len(wanted) == 1 and isinstance(wanted[0], tuple):  # a case table's ("fail", clause)
        wanted = list(wanted[0])
    if not 1 <= len(wanted) <= 2 or wanted[0] not in EXPECTED:
        raise ValueError(f"{verdict.check}: expected {wanted!r}: give pass, fail or unknown, and maybe a clause")
    clause = wanted[1] if len(wanted) == 2 else None
    if clause is not None and (wanted[0] != "fail" or not isinstance(clause, str)):
        raise ValueError(f"{verdict.check}: a clause ({clause!r}) is expected only of a fail, as a string")
    return verdict, wanted[0], clause


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:120] or "experiment"


def explain(judgements: list[Judgement]) -> str:
    """The lines a failed assertion shows: each check, expected vs got (with the clause
    a broken variant must break, and the ones that failed), and why."""
    return "\n".join(
        f"{'ok ' if j.as_expected else 'BAD'} {j.verdict.check}: expected {_wanted(j)}, got {_got(j)}"
        f" - {j.verdict.explanation}"
        for j in judgements
    )


def _wanted(j: Judgement) -> str:
    return f"{j.expected} on {j.expected_clause}" if j.expected_clause else j.expected


def _got(j: Judgement) -> str:
    return f"{j.verdict.status} on {', '.join(j.failed_clauses)}" if j.failed_clauses else j.verdict.status


def hold(target: str, *, variant: str, runtime: str, reports_dir: Path, say: Any = print) -> None:
    """Stands a target up, prints where everything is, holds until Ctrl-C or SIGTERM."""
    import threading

    run = HarnessRun(reports_dir=reports_dir, runtime=runtime).open()
    try:
        with run.deployed(target, variant=variant, name=f"up-{Path(str(target)).name}") as rt:
            say(f"target {rt.topology.name} (variant {variant}) is up on the {runtime} runtime; run id {run.run_id}")
            say(f"  entry: {rt.entry_url()}")
            for name, addrs in rt.addresses().items():
                say(f"  {name}: {', '.join(addrs)}")
            for link in rt.topology.links:
                say(f"  proxies of {link.name}: {', '.join(p.proxy for p in rt.link_proxies(link.name))}")
            say(f"  Toxiproxy API: {run.toxiproxy.api_url} (e.g. toxiproxy-cli -h {run.toxiproxy.host}:{run.toxiproxy.port} list)")
            say("Ctrl-C to take it down.")
            threading.Event().wait()
    except KeyboardInterrupt:
        say("taking it down")
    finally:
        run.close()
