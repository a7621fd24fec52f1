"""Applies the registry to a running server: hot-swap, canary split, automatic rollback.

The registry (adapters/registry.py) is the truth; this class makes the heads follow it:

* every role's champion (and challenger, preloaded so a promotion is a pointer switch) is
  attached to the shared base model once (PEFT, on the model's own thread, between batches);
* each head of the role gets a `route`: the champion, or during a canary the new version
  for `share` of the calls and the previous champion for the rest. A call reads its route
  once when it starts, so calls in flight finish on the adapter they started with;
* a canary is watched (adapters/canary.py): probes plus every live call; the verdict
  confirms the deployment or rolls it back, writes a summary JSON and notifies.

Changes made by other processes (the CLI, `council improve`, another replica's verdict) are
picked up by polling the registry's signature every `poll_s`; the admin API calls `sync()`
directly. Among replicas on one Redis, only the leader judges (adapters/leader.py).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections import deque
from pathlib import Path
from typing import Any

import httpx

from council.adapters import registry as adapters
from council.adapters.canary import CanaryWatch
from council.adapters.leader import CanaryLeader
from council.adapters.registry import BASE, Registry, write_summary
from council.config import Settings
from council.heads import Head
from council.heads.admission import patient
from council.heads.local import LocalHead
from council.heads.openai_compat import OpenAICompatHead
from council.jobs.notify import notify
from council.types import Completion, Message

log = logging.getLogger(__name__)

PROBE_SEED = 2_000_003  # apart from the gauntlet's hold-out and from live traffic
_rng = random.Random()


class Deployer:
    def __init__(self, council: Any, registry: Registry, settings: Settings, poll_s: float = 1.0):
        self.council = council
        self.registry = registry
        self.settings = settings
        self.poll_s = poll_s
        self.watches: dict[str, CanaryWatch] = {}
        self.baseline: dict[str, deque[float]] = {}
        self.errors: dict[str, str] = {}  # role -> why its champion could not be applied
        self.remote_loaded: set[tuple[str, str]] = set()  # (head id, version) on a vLLM server
        self.probe_sets: dict[tuple[str, str | None], list[Any]] = {}
        self._signature: tuple[Any, ...] | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self.leader = CanaryLeader(settings)
        self._probing: set[int] = set()  # deployments whose probes this server runs
        council.observers.append(self.observe)

    # heads -----------------------------------------------------------------------------
    def heads(self, role: str) -> list[Head]:
        return [h for h in self.council.enabled if h.spec.role == role and self._servable(h)]

    @staticmethod
    def _servable(head: Head) -> bool:
        return isinstance(head, LocalHead) or (
            isinstance(head, OpenAICompatHead) and head.spec.provider == "vllm"
        )

    def roles(self) -> list[str]:
        return sorted({h.spec.role for h in self.council.enabled if self._servable(h)})

    # lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """At boot: register adapters found on disk, load each role's champion, watch; with a
        challenger waiting, prepare the champion's probes in the background."""
        await asyncio.to_thread(self.registry.discover)
        await asyncio.to_thread(self.leader.contend)
        await self.sync()
        for role in self.roles():  # probes are only needed once a deploy is coming
            aliases = self.registry.aliases(role)
            if aliases["challenger"] and self.settings.deploy.canary_probes:
                self._spawn(self._prepare_probes(role, aliases["champion"]))
        self._loop_task = asyncio.create_task(self._poll())

    async def close(self) -> None:
        for task in [self._loop_task, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.to_thread(self.leader.release)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                signature = await asyncio.to_thread(self.registry.signature)
                if signature != self._signature:
                    await self.sync()
                await self._share()
                await self.judge()
            except Exception:
                log.exception("deployer poll failed")

    async def _share(self) -> None:
        """Push this follower's observations, or lead (and probe) when the leader is gone."""
        if not self.leader.shared:
            return
        await asyncio.to_thread(self.leader.flush)
        if await asyncio.to_thread(self.leader.contend):
            for role, watch in self.watches.items():
                if watch.deployment["id"] not in self._probing:
                    self._spawn_probes(role, watch)

    # applying the registry -------------------------------------------------------------------
    async def sync(self) -> None:
        """Make every role's heads answer with what the registry says, now."""
        async with self._lock:
            self._signature = await asyncio.to_thread(self.registry.signature)
            aliases = await asyncio.to_thread(self.registry.all_aliases)
            canaries = {c["role"]: c for c in await asyncio.to_thread(self.registry.canaries)}
            for role in self.roles():
                await self._apply(role, aliases.get(role, {}), canaries.get(role))

    async def _apply(
        self, role: str, aliases: dict[str, Any], canary: dict[str, Any] | None
    ) -> None:
        champion = aliases.get("champion")
        challenger = aliases.get("challenger")
        previous = canary["previous"] if canary else None
        try:
            for version in dict.fromkeys(v for v in (champion, previous) if v):
                await self.load(role, version)
        except Exception as exc:
            self.errors[role] = f"cannot load {champion}: {exc}"
            log.error("role %s: %s", role, self.errors[role])
            if canary is not None and self.leader.leading:  # cannot even load: rolled back
                self._finish(role, canary, "rollback", f"could not load {champion}: {exc}", None)
            return
        self.errors.pop(role, None)
        if challenger and challenger != champion:
            self._spawn(self._preload(role, challenger))
        for head in self.heads(role):
            head.route = self._route(champion, canary)
        watch = self.watches.get(role)
        if canary is None:
            self.watches.pop(role, None)
        elif watch is None or watch.deployment["id"] != canary["id"]:
            self._start_watch(role, canary)

    @staticmethod
    def _route(champion: str | None, canary: dict[str, Any] | None) -> Any:
        if canary is None or canary["version"] != champion or canary["share"] >= 1.0:
            return lambda: champion
        share, previous = canary["share"], canary["previous"]
        return lambda: champion if _rng.random() < share else previous

    async def load(self, role: str, version: str) -> None:
        """Attach `version` to every head of the role that does not have it yet."""
        adapter = await asyncio.to_thread(self.registry.get, version)
        path = Path(adapter["path"])
        if not (path / "adapter_config.json").exists():
            raise FileNotFoundError(f"{path} holds no PEFT adapter (adapter_config.json)")
        engines = {}
        for head in self.heads(role):
            if isinstance(head, LocalHead):
                engines[id(head._engine())] = head._engine()
            elif (head.id, version) not in self.remote_loaded:
                await self._load_remote(head, version, path)
        for engine in engines.values():
            if version not in engine.adapters:
                await engine.ensure_loaded()
                await asyncio.get_running_loop().run_in_executor(
                    engine._executor, engine.attach_adapter, version, path
                )

    async def _load_remote(self, head: Head, version: str, path: Path) -> None:
        """vLLM: register the adapter under its versioned name (never reuse a name)."""
        base = str(head.spec.base_url).rstrip("/")
        async with httpx.AsyncClient(timeout=60) as http:
            r = await http.post(f"{base}/load_lora_adapter",
                                json={"lora_name": version, "lora_path": str(path)})  # fmt: skip
        if r.status_code >= 400 and "already" not in r.text.lower():
            raise RuntimeError(
                f"{base}/load_lora_adapter answered {r.status_code}: {r.text[:200]} (start vLLM "
                "with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
            )
        self.remote_loaded.add((head.id, version))

    async def _preload(self, role: str, version: str) -> None:
        try:
            await self.load(role, version)
        except Exception as exc:
            log.warning("could not preload challenger %s for %s: %s", version, role, exc)

    # watching ----------------------------------------------------------------------------
    def observe(self, head: Head, msgs: list[Message], result: list[Completion]) -> None:
        """Every head call passes here (Council.observers)."""
        role = head.spec.role
        if not self._servable(head):
            return
        watch = self.watches.get(role)
        recent = self.baseline.setdefault(role, deque(maxlen=200))
        for c in result:
            if watch is not None and c.adapter == watch.version:
                ok = c.ok and bool(c.text.strip())
                watch.observe_candidate(ok, c.latency_ms)
                self.leader.queue(watch.deployment["id"], "candidate", ok, c.latency_ms)
            elif c.ok:
                recent.append(c.latency_ms)
                if watch is not None:
                    watch.observe_baseline(c.latency_ms)
                    self.leader.queue(watch.deployment["id"], "baseline", True, c.latency_ms)

    def _start_watch(self, role: str, canary: dict[str, Any]) -> None:
        s = self.settings
        watch = CanaryWatch(
            canary, s.deploy.canary_min_samples, s.deploy.rollback_threshold_success,
            s.deploy.rollback_threshold_latency, baseline_ms=list(self.baseline.get(role, ())),
        )  # fmt: skip
        watch.started = canary["started_at"]
        self.watches[role] = watch
        log.info("canary of %s for %s: %.0f %% of calls, %.0f s or %d calls", canary["version"],
                 role, 100 * canary["share"], canary["window_s"], canary["requests"])  # fmt: skip
        if self.leader.leading:  # followers serve and report calls; the leader probes
            self._spawn_probes(role, watch)

    def _spawn_probes(self, role: str, watch: CanaryWatch) -> None:
        self._probing.add(watch.deployment["id"])
        self._spawn(self._run_probes(role, watch))

    async def judge(self) -> None:
        if not self.leader.leading:
            return
        for role, watch in list(self.watches.items()):
            if self.leader.shared:
                seen = await asyncio.to_thread(self.leader.drain, watch.deployment["id"])
                for kind, ok, ms in seen:
                    if kind == "candidate":
                        watch.observe_candidate(ok, ms)
                    else:
                        watch.observe_baseline(ms)
            verdict = watch.verdict()
            if verdict is not None:
                self._finish(role, watch.deployment, verdict[0], verdict[1], watch)
                await self.sync()

    def _finish(
        self, role: str, canary: dict[str, Any], outcome: str, reason: str,
        watch: CanaryWatch | None,
    ) -> None:  # fmt: skip
        summary = watch.summary() if watch is not None else {"version": canary["version"]}
        self.watches.pop(role, None)
        if outcome == "rollback":
            done = adapters.rollback(self.settings, self.registry, role, reason,
                                     summary=summary, announce=False)  # fmt: skip
            log.warning("rolled back %s: %s → %s (%s)", role, canary["version"] or BASE,
                        done["version"] or BASE, reason)  # fmt: skip
            self._spawn(asyncio.to_thread(adapters.announce_rollback, self.settings, done))
            return
        done = self.registry.confirm(canary["id"], summary)
        path = write_summary(
            self.settings.server.data_dir, done, {"reason": reason, "metrics": summary}
        )
        text = f"Deployed {canary['version'] or BASE} as {role} champion ({reason})"
        log.info(text)
        self._spawn(self._prepare_probes(role, canary["version"]))
        fields = {"role": role, "summary": str(path)}
        self._spawn(asyncio.to_thread(notify, self.settings, "deploy", text, fields,
                                      key=f"deployment:{canary['id']}:confirmed"))  # fmt: skip

    # probes --------------------------------------------------------------------------------
    def _probe_head(self, role: str, adapter: str | None) -> Head | None:
        heads = [h for h in self.heads(role) if isinstance(h, LocalHead)] or self.heads(role)
        if not heads:
            return None
        pinned = copy.copy(min(heads, key=lambda h: h.spec.temperature))  # the greedy member
        pinned.route, pinned.adapter = None, adapter
        return pinned

    async def _prepare_probes(self, role: str, champion: str | None) -> list[Any]:
        """Gold items that `champion` answers correctly (cached per champion)."""
        key = (role, champion)
        if key in self.probe_sets:
            return self.probe_sets[key]
        want = self.settings.deploy.canary_probes
        head = self._probe_head(role, champion)
        if want == 0 or head is None:
            self.probe_sets[key] = []
            return []
        from council.learning.gauntlet import run_items

        pool = await asyncio.to_thread(probe_pool, want * 2, self.council.embedder is not None,
                                       self.council.settings.learning.gauntlet_family,
                                       self.registry.store)  # fmt: skip
        kept: list[Any] = []
        budget = self.council.settings.learning.gate_max_tokens
        for i in range(0, len(pool), 8):
            part = pool[i : i + 8]
            with patient():  # the server's own work: it queues behind requests, never a 503
                out = await run_items(head, part, champion, self.council.embedder,
                                      max_tokens=budget)  # fmt: skip
            kept += [it for it, ok in zip(part, out.correct, strict=True) if ok]
            if len(kept) >= want:
                break
        self.probe_sets[key] = kept[:want]
        log.info("probe set for %s on %s: %d items", role, champion or BASE, len(kept[:want]))
        return self.probe_sets[key]

    async def _run_probes(self, role: str, watch: CanaryWatch) -> None:
        from council.learning.gauntlet import run_items

        with patient():  # probes queue behind live requests: a 503 would blind the canary
            await self._probe(role, watch, run_items)

    async def _probe(self, role: str, watch: CanaryWatch, run_items: Any) -> None:
        try:
            items = await self._prepare_probes(role, watch.deployment["previous"])
            watch.probes_planned = len(items)
            head = self._probe_head(role, watch.version)
            budget = self.council.settings.learning.gate_max_tokens
            for i in range(0, len(items), 8):
                if self.watches.get(role) is not watch or head is None:
                    return  # judged already (rolled back early, or confirmed)
                part = items[i : i + 8]
                out = await run_items(head, part, watch.version, self.council.embedder,
                                      max_tokens=budget)  # fmt: skip
                for ok in out.correct:
                    watch.observe_probe(ok)
        except Exception:
            log.exception("canary probes for %s failed; judging on live calls only", role)
            watch.probes_planned = watch.probe_total

    def state(self) -> dict[str, Any]:
        """What this server applies now (for /api/adapters/state)."""
        return {
            role: {
                "serving": sorted({str(h.pick_adapter() or BASE) for h in self.heads(role)}),
                "heads": [h.id for h in self.heads(role)],
                "canary": self.watches[role].summary() if role in self.watches else None,
                "error": self.errors.get(role),
            }
            for role in self.roles()
        }


def probe_pool(n: int, with_mtbench: bool, family: str = "basic_arithmetic",
               store: Any = None) -> list[Any]:  # fmt: skip
    """Candidate probe items: users' held-out traffic and replay items (the gauntlet's own
    sets); the gauntlet's families at a seed of their own only while there is no traffic."""
    from council.errors import GauntletError
    from council.learning.gate_sets import probe_items
    from council.learning.gauntlet import control_family, mtbench_items, reasoning_items

    if store is not None and (users := probe_items(store, n)):
        return users

    third = max(1, n // 3)
    items = reasoning_items(family, third, PROBE_SEED, "probe")
    items += reasoning_items(control_family(family), third, PROBE_SEED, "probe")
    if with_mtbench:
        try:
            items += mtbench_items(third)
        except GauntletError as exc:
            log.info("no MT-Bench probes: %s", exc)
    _rng_items = random.Random(PROBE_SEED)
    _rng_items.shuffle(items)
    return items
