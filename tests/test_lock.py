"""The leader lock against real processes: file locks (flock) and a real redis-server."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.config import Settings
from council.jobs.lock import LockHeld, LockLost, LockUnavailable, leader_lock
from tests.helpers import free_port

REDIS_SERVER = Path("/usr/bin/redis-server")

# One script plays holder and contender: it holds the lock until a line arrives on stdin
# ("crash" dies with os._exit while holding), or prints the refusal and exits 3.
CONTENDER = """
import os, sys
from pathlib import Path
from council.config import Settings
from council.jobs.lock import LockHeld, leader_lock

settings = Settings(data_dir=Path(sys.argv[1]), redis_url=sys.argv[2] or None)
try:
    with leader_lock(settings, ttl_s=float(sys.argv[3])) as lease:
        print("held", lease.pid, flush=True)
        if sys.stdin.readline().strip() == "crash":
            os._exit(9)
except LockHeld as e:
    print("refused", e.message, flush=True)
    sys.exit(3)
print("released", flush=True)
"""


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, no persistence, stopped afterwards."""
    if not REDIS_SERVER.exists():
        pytest.skip(
            "/usr/bin/redis-server is missing: install it with `apt-get install redis-server` "
            "(`make test` installs it when run as root)"
        )
    import redis

    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = (folder / "redis.log").open("w")
    proc = subprocess.Popen(
        [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{(folder / 'redis.log').read_text()}")
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    import redis

    redis.Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture(params=["file", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return Settings(data_dir=tmp_path / "data", redis_url=url)


def start(settings: Settings, ttl_s: float = 60.0) -> subprocess.Popen[str]:
    args = [str(settings.server.data_dir), settings.deploy.redis_url or "", str(ttl_s)]
    return subprocess.Popen(
        [sys.executable, "-c", CONTENDER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"no line from pid {proc.pid} in {timeout}s: {proc.communicate()[1]}")
    line = proc.stdout.readline()
    if not line:
        pytest.fail(f"pid {proc.pid} exited without a line: {proc.communicate()[1]}")
    return line.strip()


def hold(settings: Settings, ttl_s: float = 60.0) -> subprocess.Popen[str]:
    proc = start(settings, ttl_s)
    assert first_line(proc) == f"held {proc.pid}"
    return proc


def test_second_process_is_refused_with_the_holders_pid(settings: Settings) -> None:
    holder = hold(settings)
    try:
        contender = start(settings)
        out, err = contender.communicate(timeout=60)
        assert contender.returncode == 3, err
        assert out.startswith("refused Another improvement cycle holds the 'improve' lock")
        assert f"pid {holder.pid}" in out
        assert f"host {socket.gethostname()}" in out
        assert "wait for it to finish or stop it" in out

        # and in-process: the error carries the holder's record
        with pytest.raises(LockHeld) as refused, leader_lock(settings):
            pytest.fail("took a lock another process holds")
        assert refused.value.holder is not None
        assert refused.value.holder["pid"] == holder.pid
        assert refused.value.status_code == 409

        # a clean exit releases it for the next cycle
        assert holder.stdin is not None
        holder.stdin.write("done\n")
        holder.stdin.flush()
        assert first_line(holder) == "released"
        assert holder.wait(timeout=30) == 0
        with leader_lock(settings) as lease:
            assert lease.pid == os.getpid()
            assert lease.describe().startswith(f"host {socket.gethostname()}, pid ")
    finally:
        holder.kill()
        holder.wait()


def test_other_lock_names_do_not_contend(settings: Settings) -> None:
    with leader_lock(settings, "improve"), leader_lock(settings, "harvest") as lease:
        assert lease.name == "harvest"


def test_a_killed_file_lock_holder_frees_the_lock_at_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    holder = hold(settings)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with leader_lock(settings) as lease:  # the kernel dropped the flock with the process
        assert lease.backend == "file"
        record = (settings.server.data_dir / "locks" / "improve.holder.json").read_text()
        assert f'"pid": {lease.pid}' in record  # the dead holder's record was replaced
    assert not (settings.server.data_dir / "locks" / "improve.holder.json").exists()


def test_a_crashed_file_lock_holder_frees_the_lock(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    holder = hold(settings)
    assert holder.stdin is not None
    holder.stdin.write("crash\n")  # os._exit while holding: no finally, no release
    holder.stdin.flush()
    assert holder.wait(timeout=30) == 9
    with leader_lock(settings) as lease:
        assert lease.backend == "file"


def test_a_killed_redis_holder_expires_after_its_ttl(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url)
    ttl = 1.0
    holder = hold(settings, ttl_s=ttl)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    killed = time.monotonic()
    with pytest.raises(LockHeld) as refused, leader_lock(settings):
        pytest.fail("a dead holder's Redis lock vanished before its TTL")
    assert refused.value.holder is not None
    assert refused.value.holder["pid"] == holder.pid
    while True:
        try:
            with leader_lock(settings) as lease:
                assert lease.backend == "redis"
            break
        except LockHeld:
            assert time.monotonic() - killed < ttl + 3, "the lock outlived its TTL"
            time.sleep(0.05)


def test_a_live_redis_holder_renews_past_its_ttl(redis_url: str, tmp_path: Path) -> None:
    import redis

    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url)
    ttl = 1.5  # renewals every 0.5 s: a loaded CI box may stall a thread that long
    holder = hold(settings, ttl_s=ttl)
    try:
        time.sleep(4 * ttl)  # four TTLs: only renewals keep the key alive
        with pytest.raises(LockHeld), leader_lock(settings):
            pytest.fail("a live holder's Redis lock expired")
        pttl = redis.Redis.from_url(redis_url).pttl("council:lock:improve")
        assert 0 < pttl <= ttl * 1000
    finally:
        holder.kill()
        holder.wait()


def test_redis_release_removes_only_our_key(redis_url: str, tmp_path: Path) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url)
    with leader_lock(settings, ttl_s=0.3) as lease:
        # simulate the key expiring and another host taking it while we were stalled
        client.set("council:lock:improve", b'{"pid": 1, "host": "elsewhere"}', px=60_000)
        time.sleep(0.5)  # the renewer finds the key is no longer ours
        assert lease.lost
        with pytest.raises(LockLost, match="expired while this cycle held it"):
            lease.ensure_held()
    assert client.get("council:lock:improve") == b'{"pid": 1, "host": "elsewhere"}'


def test_unreachable_redis_says_to_check_the_url(tmp_path: Path) -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings(data_dir=tmp_path / "data", redis_url=url)
    with pytest.raises(LockUnavailable) as failed, leader_lock(settings):
        pytest.fail("took a lock from a Redis that is not running")
    assert "COUNCIL_REDIS_URL" in failed.value.message
    assert "secret" not in failed.value.message
    assert failed.value.status_code == 503


def test_bad_lock_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lock name"):
        leader_lock(Settings(data_dir=tmp_path), "../escape")
