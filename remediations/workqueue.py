"""The work queue between the doors and the worker: WorkItems as Storage queue messages.

    queue = WorkQueue.from_env()                # AzureWebJobsStorage, CRYPTWARD_WORK_QUEUE; creates the queues
    queue.enqueue(item, delay_seconds=60)       # invisible for a minute: the worker reads the settled resource
    for got in queue.receive():                 # what the queue trigger does for the worker in the function app
        ...; queue.complete(got)

Messages are the WorkItem's JSON, base64-encoded: the Functions queue trigger decodes base64 by default
(`messageEncoding`), and hands the worker the JSON (`WorkItem.from_json(msg.get_body())`). A message is at most
64 KB once encoded; a bigger one is refused (QueueRefused), not cut. A message the worker keeps failing on goes to
`<queue>-poison`, the name the Functions host uses; `receive` moves a message that is not a WorkItem there at once.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from remediations._storage import StorageTarget, as_target, storage_errors, target
from remediations.errors import EventRejected, QueueRefused, SettingsError
from remediations.events import WorkItem

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

log = logging.getLogger(__name__)

QUEUE_SETTING = "CRYPTWARD_WORK_QUEUE"
DEFAULT_QUEUE = "cryptward-work"
MAX_MESSAGE_BYTES = 64 * 1024
POISON_SUFFIX = "-poison"
_QUEUE_NAME = re.compile(r"^(?=.{3,56}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")


def poison_name(queue: str) -> str:
    """The poison queue of `queue`, as the Functions host names it."""
    return f"{queue}{POISON_SUFFIX}"


def encode(item: WorkItem) -> str:
    """The message text as stored: base64 of the item's JSON (what TextBase64EncodePolicy sends). Raises
    QueueRefused when it exceeds 64 KB."""
    text = base64.b64encode(item.to_json().encode("utf-8", "replace")).decode("ascii")
    if len(text) > MAX_MESSAGE_BYTES:
        raise QueueRefused(
            f"work item for {item.resource_id[:120]!r} is {len(text)} bytes as a queue message; "
            f"the limit is {MAX_MESSAGE_BYTES} (64 KB, base64-encoded)"
        )
    return text


def decode(text: str | bytes) -> WorkItem:
    """A WorkItem from a message as stored (base64 JSON). Raises EventRejected when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EventRejected("message", "expected base64 text (the queue's message encoding)") from None
    return WorkItem.from_json(raw)


@dataclass(frozen=True)
class Received:
    """A message taken from the queue: its item, and what `complete` needs to delete it."""

    item: WorkItem
    message_id: str
    pop_receipt: str
    dequeue_count: int


@dataclass
class WorkQueue:
    """The work queue `name` (and its poison queue) in one storage account."""

    connection: str | StorageTarget = field(repr=False)  # a connection string (holds the account key) or a target
    name: str = DEFAULT_QUEUE
    _clients: dict[tuple[str, bool], QueueClient] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not _QUEUE_NAME.match(self.name):
            raise SettingsError(
                f"{QUEUE_SETTING}: queue name {self.name!r} is invalid; expected 3 to 56 lower-case letters, digits "
                "and single hyphens, starting and ending with a letter or digit (the poison queue adds '-poison')"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkQueue:
        env = os.environ if env is None else env
        queue = cls(target(env), (env.get(QUEUE_SETTING) or "").strip() or DEFAULT_QUEUE)
        queue.create()
        return queue

    @property
    def poison_name(self) -> str:
        return poison_name(self.name)

    def create(self) -> None:
        """Create the queue and its poison queue if they do not exist (idempotent)."""
        from azure.core.exceptions import ResourceExistsError

        for name in (self.name, self.poison_name):
            with storage_errors(f"creating queue {name}"), suppress(ResourceExistsError):
                self._client(name).create_queue()

    def enqueue(self, item: WorkItem, delay_seconds: int = 0) -> str:
        """Queue the item (invisible for `delay_seconds`); returns the message id. Raises QueueRefused over 64 KB."""
        encode(item)  # the size check; the client's TextBase64EncodePolicy encodes the same way
        with storage_errors(f"queueing work on {self.name}"):
            sent = self._client(self.name, encoded=True).send_message(
                item.to_json(), visibility_timeout=delay_seconds or None
            )
        return str(sent.id)

    def receive(self, max_messages: int = 32, visibility_timeout: int = 300) -> list[Received]:
        """Take up to `max_messages` items (hidden for `visibility_timeout` s until completed). A message that is not
        a WorkItem is moved to the poison queue, with the reason logged."""
        out: list[Received] = []
        client = self._client(self.name)
        with storage_errors(f"receiving work from {self.name}"):
            messages = list(client.receive_messages(max_messages=max_messages, visibility_timeout=visibility_timeout))
        for message in messages:
            text = message.content if isinstance(message.content, str) else ""
            try:
                item = decode(text)
            except EventRejected as e:
                log.warning(
                    "message %s on %s is not a work item (%s): moved to %s", message.id, self.name, e, self.poison_name
                )
                with storage_errors(f"moving a message to {self.poison_name}"):
                    self._client(self.poison_name).send_message(text)
                    client.delete_message(message.id, message.pop_receipt)
                continue
            out.append(Received(item, str(message.id), str(message.pop_receipt), int(message.dequeue_count or 0)))
        return out

    def complete(self, received: Received) -> None:
        """Delete a message whose work is done."""
        with storage_errors(f"deleting a message from {self.name}"):
            self._client(self.name).delete_message(received.message_id, received.pop_receipt)

    def poisoned(self, max_messages: int = 32) -> list[str]:
        """The raw texts at the head of the poison queue (peeked, not removed): for reports and tests."""
        with storage_errors(f"reading {self.poison_name}"):
            return [str(m.content) for m in self._client(self.poison_name).peek_messages(max_messages=max_messages)]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _client(self, name: str, *, encoded: bool = False) -> QueueClient:
        """`encoded`: sends base64-encode the text (TextBase64EncodePolicy). Receives never decode in the SDK: `decode`
        does it, so one malformed message cannot break the receiving of the others."""
        if (name, encoded) not in self._clients:
            from azure.storage.queue import TextBase64EncodePolicy

            self._clients[(name, encoded)] = as_target(self.connection).queue_client(
                name, message_encode_policy=TextBase64EncodePolicy() if encoded else None
            )
        return self._clients[(name, encoded)]
