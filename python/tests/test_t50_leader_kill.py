"""Leader changes: three heads; the leader is killed (SIGKILL) while a loop submits tasks.
The client follows the new leader (the `xnai-leader` hint, else the next head) and resends
each write with its request id, so every submission is one task and none is lost."""

import os
import shutil
import signal
import threading
import time

import xnai

from conftest import log, start_cluster, wait_until

N = 150


def test_leader_kill_during_a_submit_loop_loses_nothing() -> None:
    cl = start_cluster(heads=3, workers=2)
    try:
        with xnai.connect(cl.head_env, cl.token) as c:
            def leader() -> str:
                return next(h.address for h in c.status().heads if h.role == "leader")

            refs = []
            killed = threading.Event()

            def submit_loop() -> None:
                for i in range(N):
                    refs.append((i, c.submit("echo", f"task-{i}", cpus=0)))
                    if i == N // 3:
                        killed.wait(30)

            log.info("--- phase: submit loop; kill the leader a third of the way in")
            t = threading.Thread(target=submit_loop)
            t.start()
            wait_until("a third submitted", 60, lambda: len(refs) > N // 3)
            old = leader()
            pid = cl.head_pids()[old]
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            killed.set()
            t.join(120)
            assert not t.is_alive()
            log.info("--- phase: %d submitted, %.1f s after the kill", len(refs), time.monotonic() - killed_at)
            assert len(refs) == N
            wait_until("a new leader", 30, lambda: leader() != old)

            log.info("--- phase: every result is there, once")
            for i, r in refs:
                assert c.get(r, timeout=60) == f"task-{i}".encode()
            assert len({r.hex for _, r in refs}) == N, "each submit is its own task"
            status = c.status()
            assert status.tasks >= N
            assert status.tasks - N < 5, f"a retried submit ran twice: {status.tasks} tasks for {N} submits"
    finally:
        cl.down()
        shutil.rmtree(cl.data_dir, ignore_errors=True)
