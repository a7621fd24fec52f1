"""Nothing a client was told was saved may be lost: kill -9 a real server under load."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from council.storage import open_db
from tests.helpers import ServerProcess, local_specs, write_config


def test_acknowledged_exchanges_survive_kill_9(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "council.toml",
        local_specs(
            tiny_model_dir,
            2,
        ),
        embedder="minilm",
        memory=True,
    )
    data = tmp_path / "data"
    server = ServerProcess(config, data)
    server.wait_ready()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = http.post(
                        "/vote", json={"prompt": f"client {n} question {i}", "user": f"u{n}"}
                    )
                except httpx.HTTPError:
                    return  # the server died mid-request: that one was never acknowledged
                if r.status_code == 200:
                    with lock:
                        acknowledged.append(r.json()["meta"]["exchange_id"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.proc.kill()  # SIGKILL while requests are in flight
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) >= 8, server.log.read_text()[-2000:]

    store = open_db(data / "council.db")
    stored = {r[0] for r in store.query("SELECT id FROM exchanges")}
    missing = [e for e in acknowledged if e not in stored]
    assert not missing, f"{len(missing)} acknowledged exchanges lost"
    assert store.query("PRAGMA integrity_check")[0][0] == "ok"
    store.close()

    restarted = ServerProcess(config, data)  # the memory index catches up from SQLite
    try:
        restarted.wait_ready()
        stats = httpx.get(f"{restarted.url}/api/memory/stats").json()
        assert stats["memory_index"]["count"] == stats["memories"] >= len(acknowledged)
    finally:
        restarted.stop()
