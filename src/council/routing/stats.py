"""Routing figures from the store and the ledger: how many answers stayed local (the
"99 % local" promise as a number), escalations, early stops, and today's spend."""

from __future__ import annotations

import json
from typing import Any

from council.config import Settings
from council.routing import ledger
from council.routing.governor import Governor


def routing_stats(settings: Settings, store: Any | None, governor: Governor) -> dict[str, Any]:
    """Counts over every stored answer (council and single-head) plus the governor's report.

    An answer is "cloud" when a head that is cloud in today's catalogue sat on its deciding
    ballot; without a memory store there is nothing to count (the live gauge on /metrics,
    swarm_cloud_share_ratio, covers the running process).
    """
    cloud_heads = {h.id for h in settings.heads.specs if h.is_cloud}
    out: dict[str, Any] = {"answers": 0, "cloud_answers": 0, "cloud_share": None,
                           "escalations": 0, "early_stops": 0, "by_strategy": {}}  # fmt: skip
    if store is not None:
        for strategy, models_json, notes_json in ledger.answers(store):
            out["answers"] += 1
            out["by_strategy"][strategy] = out["by_strategy"].get(strategy, 0) + 1
            if cloud_heads & set(json.loads(models_json)):
                out["cloud_answers"] += 1
            notes = " ".join(json.loads(notes_json))
            out["escalations"] += "escalated to" in notes
            out["early_stops"] += "early stop:" in notes
        if out["answers"]:
            out["cloud_share"] = round(out["cloud_answers"] / out["answers"], 4)
    out["governor"] = governor.report()
    return out
