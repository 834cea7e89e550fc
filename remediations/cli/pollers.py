"""The background triggers of `cryptward serve`, as the Functions host runs them: a poller per queue trigger (leases,
retries after a failure, `<queue>-poison` after `maxDequeueCount` attempts) and a loop per timer trigger."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from remediations.cli.hostsettings import next_fire, resolve
from remediations.runtime import Runtime

log = logging.getLogger("cryptward.serve")


class Pollers:
    """The queue and timer loops of `serve.Host` (whose fields these are)."""

    storage: str
    max_dequeue_count: int
    retry_delay: float
    workers: int
    lease_seconds: int
    poll_max: float
    run_timers_now: bool
    runtime: Runtime | None
    _stop: threading.Event
    _wake: threading.Event

    # -- queue --------------------------------------------------------------------------------------------------

    def _queue_loop(self, fn: Any) -> None:
        from remediations.runtime import current
        from remediations.store.storage import StorageTarget, create_queue, target

        trigger = fn.get_trigger()
        name = resolve(trigger.queue_name)
        storage = (
            StorageTarget(connection=self.storage)
            if self.storage
            else target((self.runtime or current()).settings.storage.values)
        )
        client = storage.queue_client(name)
        poison = storage.queue_client(f"{name}-poison")
        for q in (client, poison):
            create_queue(q)
        user = fn.get_user_function()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"cryptward-{fn.get_function_name()}")
        inflight: set[Future[None]] = set()
        idle = 0.005
        try:
            while not self._stop.is_set():
                free = self.workers - len(inflight)
                got = []
                if free > 0:
                    try:
                        got = list(
                            client.receive_messages(
                                max_messages=min(32, free),
                                messages_per_page=min(32, free),
                                visibility_timeout=self.lease_seconds,
                            )
                        )[:free]
                    except Exception as e:
                        log.warning("receiving from %s failed: %s", name, type(e).__name__)
                        self._stop.wait(1.0)
                        continue
                for message in got:
                    inflight.add(pool.submit(self._one_message, user, client, poison, message))
                done = {f for f in inflight if f.done()}
                inflight -= done
                if got:
                    idle = 0.005
                    continue
                if inflight and len(inflight) >= self.workers:
                    wait(inflight, timeout=self.poll_max, return_when=FIRST_COMPLETED)
                    continue
                self._wake.wait(idle)
                if self._wake.is_set():
                    self._wake.clear()
                    idle = 0.005
                else:
                    idle = min(idle * 2, self.poll_max)
        finally:
            pool.shutdown(wait=True, cancel_futures=False)
            client.close()
            poison.close()

    def _one_message(self, user: Callable[..., Any], client: Any, poison: Any, message: Any) -> None:
        from azure.functions.queue import QueueMessage

        text = message.content if isinstance(message.content, str) else ""
        try:
            body = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            body = text.encode("utf-8", "replace")  # not base64: the function sees it as it is, and refuses it
        msg = QueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
        )
        try:
            user(msg)
        except Exception as e:
            count = int(message.dequeue_count or 0)
            if count >= self.max_dequeue_count:
                log.warning("message %s failed %d times (%s): moved to %s", message.id, count, e, poison.queue_name)
                poison.send_message(text)
                client.delete_message(message.id, message.pop_receipt)
            else:
                log.info("message %s failed (attempt %d): %s; retried in %g s", message.id, count, e, self.retry_delay)
                client.update_message(message.id, message.pop_receipt, visibility_timeout=int(self.retry_delay))
            return
        client.delete_message(message.id, message.pop_receipt)

    # -- timers -------------------------------------------------------------------------------------------------

    def _timer_loop(self, fn: Any) -> None:
        from azure.functions.timer import TimerRequest

        schedule = resolve(fn.get_trigger().schedule)
        user = fn.get_user_function()
        name = fn.get_function_name()

        def fire(past_due: bool) -> None:
            try:
                user(TimerRequest(past_due=past_due))
            except Exception:
                log.exception("timer %s failed", name)

        if self.run_timers_now:
            fire(False)
        while not self._stop.is_set():
            due = next_fire(schedule, datetime.now())
            if self._stop.wait(max(0.0, (due - datetime.now()).total_seconds())):
                return
            fire(datetime.now() - due > timedelta(seconds=10))


__all__ = ["Pollers"]
