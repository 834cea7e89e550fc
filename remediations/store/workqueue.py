"""The work queue between the doors and the worker: WorkItems as Storage queue messages.

    queue = WorkQueue.from_env(settings.storage.values)  # AzureWebJobsStorage, CRYPTWARD_WORK_QUEUE; creates the queues
    queue.enqueue(item, delay_seconds=60)       # invisible for a minute: the worker reads the settled resource
    for got in queue.receive():                 # what the queue trigger does for the worker in the function app
        ...; queue.complete(got)

Messages are the WorkItem's JSON, base64-encoded: the Functions queue trigger decodes base64 by default
(`messageEncoding`), and hands the worker the JSON (`unpack(msg.get_body())`). A message is at most 64 KB once
encoded; a bigger one is refused (QueueRefused), not cut. A message the worker keeps failing on goes to
`<queue>-poison`, the name the Functions host uses; `receive` moves a message that is not work there at once.

The sweeps queue one work item per resource, packed: `{"items": [item, ...]}` holds up to PACK_ITEMS of them
(`enqueue_pack`). A Storage queue send costs about 3 ms of client CPU in the SDK whatever the message holds, so
10,000 single messages are ~30 s of one core; 313 packs are one second. The worker works a pack's items one by one
and gives each failed item back to the queue as a message of its own, so retries and the poison queue stay per
resource. Events stay one item per message: they come one resource at a time.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from remediations.errors import EventRejected, QueueRefused, SettingsError
from remediations.payload import load_json
from remediations.store.storage import StorageTarget, as_target, create_queue, storage_errors, target
from remediations.work import WorkItem

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

log = logging.getLogger(__name__)

QUEUE_SETTING = "CRYPTWARD_WORK_QUEUE"
DEFAULT_QUEUE = "cryptward-work"
MAX_MESSAGE_BYTES = 64 * 1024
PACK_ITEMS = 32  # work items per sweep message: at ~200 bytes each, a pack is ~9 KB of the 64 KB
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


def pack_json(items: Sequence[WorkItem]) -> str:
    """The message JSON for several work items: `{"items": [...]}` (one item is sent as itself)."""
    if len(items) == 1:
        return items[0].to_json()
    return '{"items":[' + ",".join(item.to_json() for item in items) + "]}"


def unpack(body: str | bytes) -> tuple[list[WorkItem], bool]:
    """The work items in a message body (JSON, as the queue trigger hands it) and whether it was a pack. Raises
    EventRejected, naming the item, when any of it is not work: a pack is taken whole or not at all."""
    data = load_json(body, "message")
    if isinstance(data, dict) and "items" in data and "source" not in data:
        items = data["items"]
        if not isinstance(items, list) or not items:
            raise EventRejected("message.items", "expected a non-empty list of work items")
        return [WorkItem.from_data(one, f"message.items[{i}]") for i, one in enumerate(items)], True
    return [WorkItem.from_data(data)], False


def _unbase64(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EventRejected("message", "expected base64 text (the queue's message encoding)") from None


def decode(text: str | bytes) -> WorkItem:
    """A WorkItem from a message as stored (base64 JSON). Raises EventRejected when it is not one."""
    return WorkItem.from_json(_unbase64(text))


def decode_all(text: str | bytes) -> list[WorkItem]:
    """The work items of a message as stored (base64 JSON of one item or of a pack)."""
    return unpack(_unbase64(text))[0]


@dataclass(frozen=True)
class Received:
    """A message taken from the queue: its work items, and what `complete` needs to delete it."""

    items: tuple[WorkItem, ...]  # one, or a sweep's pack
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
    def from_env(cls, env: Mapping[str, str]) -> WorkQueue:
        queue = cls(target(env), (env.get(QUEUE_SETTING) or "").strip() or DEFAULT_QUEUE)
        queue.create()
        return queue

    @property
    def poison_name(self) -> str:
        return poison_name(self.name)

    def create(self) -> None:
        """Create the queue and its poison queue if they do not exist (idempotent)."""
        for name in (self.name, self.poison_name):
            with storage_errors(f"creating queue {name}"):
                create_queue(self._client(name))

    def enqueue(self, item: WorkItem, delay_seconds: int = 0) -> str:
        """Queue the item (invisible for `delay_seconds`); returns the message id. Raises QueueRefused over 64 KB."""
        encode(item)  # the size check; the client's TextBase64EncodePolicy encodes the same way
        with storage_errors(f"queueing work on {self.name}"):
            sent = self._client(self.name, encoded=True).send_message(
                item.to_json(), visibility_timeout=delay_seconds or None
            )
        return str(sent.id)

    def enqueue_pack(self, items: Sequence[WorkItem], delay_seconds: int = 0) -> str:
        """Queue several work items as one message (see the module's note); returns the message id. Raises
        QueueRefused when they do not fit in 64 KB: send fewer."""
        if not items:
            raise ValueError("enqueue_pack needs at least one work item")
        text = pack_json(items)
        size = len(base64.b64encode(text.encode("utf-8", "replace")))
        if size > MAX_MESSAGE_BYTES:
            raise QueueRefused(
                f"a pack of {len(items)} work items is {size} bytes as a queue message; the limit is "
                f"{MAX_MESSAGE_BYTES} (64 KB, base64-encoded): send fewer per message"
            )
        with storage_errors(f"queueing {len(items)} work item(s) on {self.name}"):
            sent = self._client(self.name, encoded=True).send_message(text, visibility_timeout=delay_seconds or None)
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
                items = decode_all(text)
            except EventRejected as e:
                log.warning(
                    "message %s on %s is not a work item (%s): moved to %s", message.id, self.name, e, self.poison_name
                )
                with storage_errors(f"moving a message to {self.poison_name}"):
                    self._client(self.poison_name).send_message(text)
                    client.delete_message(message.id, message.pop_receipt)
                continue
            out.append(
                Received(tuple(items), str(message.id), str(message.pop_receipt), int(message.dequeue_count or 0))
            )
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
