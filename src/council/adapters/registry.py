"""The adapter registry: immutable versions, per-role aliases, and every champion change.

A version is a trained PEFT folder (learning/train.py) recorded once and never rewritten.
Per role three aliases point at versions (NULL: the base model, no adapter):

  champion    what the role's heads answer with
  challenger  the newest version waiting for its gauntlet / deploy (preloaded by servers)
  previous    the champion before the current one: what a rollback returns to

Every change of champion is a row in `deployments` (deploy | promote | rollback) with its
state (canary → confirmed | rolled_back), reason and summary. The store is the one truth:
the CLI, the nightly cycle and every server process read and write it, and servers apply
it (adapters/deployer.py). Its SQL is in adapters/ledger.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from council.adapters import ledger
from council.errors import AdapterError, AdapterNotFoundError
from council.memory.store import Store

ALIASES = ("champion", "challenger", "previous")
BASE = "base"  # how users name "no adapter" on the command line and in the API


def finished_adapters(root: Path) -> list[dict[str, Any]]:
    """Every finished adapter folder under root/<role>/ (its meta.json + path), oldest first.
    Hidden `.train-*` folders are trainings still running, or ones that crashed."""
    found = []
    for meta_file in root.glob("*/*/meta.json"):
        if not meta_file.parent.name.startswith("."):
            found.append({**json.loads(meta_file.read_text()), "path": str(meta_file.parent)})
    return sorted(found, key=lambda d: d["created_at"])


class Registry:
    def __init__(self, store: Store, data_dir: Path):
        self.store = store
        self.data_dir = data_dir

    # versions --------------------------------------------------------------------------
    def register(self, meta: dict[str, Any]) -> None:
        """Record a finished adapter (its meta.json); registering twice changes nothing."""
        ledger.insert_adapter(self.store, meta)

    def discover(self) -> int:
        """Register finished adapter folders that the store does not know yet."""
        known = ledger.known_versions(self.store)
        added = 0
        for meta in finished_adapters(self.data_dir / "adapters"):
            if meta["version"] not in known:
                self.register(meta)
                added += 1
        return added

    def get(self, version: str) -> dict[str, Any]:
        row = ledger.adapter_row(self.store, version)
        if row is None:
            known = ledger.newest_versions(self.store, 5)
            raise AdapterNotFoundError(
                f"No adapter version {version!r}. Newest known: "
                f"{', '.join(known) or 'none yet (run council train)'}; "
                "see `council adapters list`."
            )
        return self._row(row)

    def versions(self, role: str | None = None) -> list[dict[str, Any]]:
        rows = ledger.adapter_rows(self.store, role)
        aliases = self.all_aliases()
        out = []
        for r in rows:
            d = self._row(r)
            d["aliases"] = [a for a, v in aliases.get(d["role"], {}).items() if v == d["version"]]
            out.append(d)
        return out

    @staticmethod
    def _row(r: Any) -> dict[str, Any]:
        meta = json.loads(r["meta_json"])
        return {
            "version": r["version"], "role": r["role"], "path": r["path"],
            "base_model": r["base_model"], "dataset_version": r["dataset_version"],
            "retired": bool(r["retired"]), "created_at": r["created_at"],
            "examples": meta.get("examples"), "final_loss": meta.get("final_loss"),
            "duration_s": meta.get("duration_s"),
        }  # fmt: skip

    # aliases ---------------------------------------------------------------------------
    def all_aliases(self) -> dict[str, dict[str, str | None]]:
        out: dict[str, dict[str, str | None]] = {}
        for r in ledger.alias_rows(self.store):
            out.setdefault(r["role"], {})[r["alias"]] = r["version"]
        return out

    def aliases(self, role: str) -> dict[str, str | None]:
        found = self.all_aliases().get(role, {})
        return {a: found.get(a) for a in ALIASES}

    def champion(self, role: str) -> str | None:
        return self.aliases(role)["champion"]

    def set_challenger(self, role: str, version: str | None) -> None:
        if version is not None:
            self._check_role(self.get(version), role)
        with self.store.tx() as db:
            ledger.set_alias(db, role, "challenger", version)

    @staticmethod
    def _check_role(adapter: dict[str, Any], role: str) -> None:
        if adapter["role"] != role:
            raise AdapterError(
                f"Adapter {adapter['version']} was trained for role {adapter['role']!r}, not "
                f"{role!r}; deploy it to its own role."
            )
        if adapter["retired"]:
            raise AdapterError(
                f"Adapter {adapter['version']} was retired (its files were removed by retention); "
                "train a new one."
            )

    # champion changes --------------------------------------------------------------------
    def deploy(
        self,
        role: str,
        version: str | None,
        *,
        canary: bool = True,
        share: float = 1.0,
        window_s: float = 60.0,
        requests: int = 40,
        action: str = "deploy",
        reason: str = "",
    ) -> dict[str, Any]:
        """Make `version` (None: the base model) the role's champion, under a canary or not."""
        if version is not None:
            self._check_role(self.get(version), role)
        with self.store.tx() as db:
            running = ledger.canary_of(db, role)
            if running is not None:
                raise AdapterError(
                    f"A canary of {running['version'] or BASE} is still being watched for role "
                    f"{role!r}; wait for its verdict (council adapters list) or roll it back."
                )
            current = ledger.alias(db, role, "champion")
            if version == current:
                raise AdapterError(f"{version or BASE} is already the champion of {role!r}.")
            ledger.set_alias(db, role, "previous", current)
            ledger.set_alias(db, role, "champion", version)
            if ledger.alias(db, role, "challenger") == version:
                ledger.set_alias(db, role, "challenger", None)
            dep_id = ledger.insert_deployment(
                db, role=role, version=version, previous=current, action=action, canary=canary,
                share=share, window_s=window_s, requests=requests, reason=reason,
            )  # fmt: skip
        return self.deployment(dep_id)

    def rollback(
        self, role: str, reason: str, *, summary: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Return the role to its previous champion; a watched canary ends `rolled_back`."""
        with self.store.tx() as db:
            current = ledger.alias(db, role, "champion")
            target = ledger.alias(db, role, "previous")
            canary = ledger.canary_of(db, role)
            if current is None and target is None and canary is None:
                raise AdapterError(
                    f"Role {role!r} already answers with the base model and has no previous "
                    "champion: there is nothing to roll back."
                )
            now = time.time()
            if canary is not None:
                ledger.roll_back_canary(db, canary["id"], reason, summary or {}, now)
            # What the restored champion had replaced becomes `previous` again.
            before = ledger.replaced_by(db, role, target)
            ledger.set_alias(db, role, "champion", target)
            ledger.set_alias(db, role, "previous", before)
            dep_id = ledger.insert_rollback(
                db, role=role, version=target, previous=current, reason=reason,
                summary=summary or {}, now=now,
            )  # fmt: skip
        return self.deployment(dep_id)

    def confirm(self, dep_id: int, summary: dict[str, Any]) -> dict[str, Any]:
        """A canary passed its window: the deployment is confirmed."""
        ledger.confirm(self.store, dep_id, summary)
        return self.deployment(dep_id)

    # reading -----------------------------------------------------------------------------
    def deployment(self, dep_id: int) -> dict[str, Any]:
        row = ledger.deployment_row(self.store, dep_id)
        if row is None:
            raise AdapterNotFoundError(f"No deployment {dep_id}.")
        return self._deployment(row)

    @staticmethod
    def _deployment(r: Any) -> dict[str, Any]:
        d = dict(r)
        d["summary"] = json.loads(d.pop("summary_json"))
        return d

    def canaries(self) -> list[dict[str, Any]]:
        return [self._deployment(r) for r in ledger.canary_rows(self.store)]

    def history(self, role: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return [self._deployment(r) for r in ledger.history_rows(self.store, role, limit)]

    def roles(self) -> list[str]:
        return ledger.roles(self.store)

    def state(self) -> dict[str, Any]:
        """Per role: the aliases, a canary being watched, and the latest changes."""
        out: dict[str, Any] = {}
        canaries = {c["role"]: c for c in self.canaries()}
        for role in self.roles():
            out[role] = {
                **self.aliases(role),
                "canary": canaries.get(role),
                "history": self.history(role, limit=10),
            }
        return out

    def signature(self) -> tuple[Any, ...]:
        """Changes whenever an alias or a deployment changes (servers poll this)."""
        return ledger.signature(self.store)


def parse_version(text: str | None) -> str | None:
    """`base` (or nothing) means the base model."""
    return None if text in (None, "", BASE) else text


def write_summary(data_dir: Path, deployment: dict[str, Any], extra: dict[str, Any]) -> Path:
    """One JSON per deploy / rollback: reason, metrics before/after, versions."""
    root = data_dir / "deployments"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{deployment['id']:05d}-{deployment['action']}-{deployment['state']}.json"
    path.write_text(json.dumps({**deployment, **extra}, indent=2, default=str))
    return path


def deploy(
    settings: Any, registry: Registry, role: str, version: str | None, *, canary: bool = True,
    share: float | None = None, window_s: float | None = None, requests: int | None = None,
    action: str = "deploy", reason: str = "", announce: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Deploy with the settings' canary defaults, write the summary, notify (unless told
    not to: the API applies the change first and announces it after)."""
    dep = registry.deploy(
        role, version, canary=canary,
        share=settings.deploy.canary_share if share is None else share,
        window_s=settings.deploy.canary_window_s if window_s is None else window_s,
        requests=settings.deploy.canary_requests if requests is None else requests,
        action=action, reason=reason,
    )  # fmt: skip
    dep["summary_path"] = str(write_summary(registry.data_dir, dep, {"reason": reason}))
    if announce:
        announce_deploy(settings, dep)
    return dep


def announce_deploy(settings: Any, dep: dict[str, Any]) -> bool:
    from council.jobs.notify import notify

    how = (
        f"canary on {100 * dep['share']:.0f} % of calls for {dep['window_s']:.0f} s"
        if dep["state"] == "canary" else "no canary"
    )  # fmt: skip
    text = f"{dep['role']}: {dep['previous'] or BASE} → {dep['version'] or BASE} ({how})"
    return notify(settings, "deploy", text, {"role": dep["role"], "summary": dep["summary_path"]},
                  key=f"deployment:{dep['id']}:{dep['state']}")  # fmt: skip


def rollback(
    settings: Any, registry: Registry, role: str, reason: str, *,
    summary: dict[str, Any] | None = None, announce: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Roll back (by hand, or the canary's verdict with its metrics): summary JSON, and a
    notification unless told not to (the server announces from a thread)."""
    dep = registry.rollback(role, reason, summary=summary)
    extra: dict[str, Any] = {"reason": reason, **({"metrics": summary} if summary else {})}
    dep["summary_path"] = str(write_summary(registry.data_dir, dep, extra))
    if announce:
        announce_rollback(settings, dep)
    return dep


def announce_rollback(settings: Any, dep: dict[str, Any]) -> bool:
    from council.jobs.notify import notify

    text = (f"{dep['role']}: rolled back {dep['previous'] or BASE} → {dep['version'] or BASE} "
            f"({dep['reason']})")  # fmt: skip
    return notify(settings, "rollback", text, {"role": dep["role"], "summary": dep["summary_path"]},
                  key=f"deployment:{dep['id']}:{dep['state']}")  # fmt: skip
