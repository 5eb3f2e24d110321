"""shared.plumbing.announced_cache against the real broker: what is cached, and that
an announcement the broker has confirmed is never missed by the next use."""

import pytest
from nameko.standalone.events import get_event_exchange

from shared.plumbing.announced_cache import AnnouncedCache
from shared.plumbing.confirms import ConfirmingChannel

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


SOURCE, CHANGED = "directory_under_test", "thing_changed"


@pytest.fixture
def announce(rabbit_config):
    """Announces a change of `name` and returns once the broker confirmed it."""
    channel = ConfirmingChannel(rabbit_config["AMQP_URI"], get_event_exchange(SOURCE, {}))

    def changed(name):
        assert channel.publish([(f"change-of-{name}", CHANGED, {"name": name})], mandatory=False)

    yield changed
    channel.close()


@pytest.fixture
def cache(rabbit_config):
    made = AnnouncedCache(
        rabbit_config["AMQP_URI"],
        SOURCE,
        [CHANGED],
        names_in=lambda _, payload: [payload["name"]],
        name_of=lambda value: value["name"],
        retry_seconds=0,
    )
    yield made
    made.close()


class Loader:
    """Counts the loads; each answers a new version of the thing."""

    def __init__(self, result=lambda n: {"name": "a", "version": n}):
        self.loads = 0
        self.result = result

    def __call__(self):
        self.loads += 1
        return self.result(self.loads)


def test_a_value_is_loaded_once_and_then_served(cache):
    load = Loader()
    assert [cache.get("key-a", load)["version"] for _ in range(5)] == [1, 1, 1, 1, 1]
    assert load.loads == 1


def test_a_confirmed_announcement_is_seen_by_the_very_next_use(cache, announce):
    load = Loader()
    other = Loader(lambda n: {"name": "b", "version": n})
    cache.get("key-a", load), cache.get("key-b", other)
    for round_ in range(2, 12):
        announce("a")
        assert cache.get("key-a", load)["version"] == round_
    assert cache.get("key-b", other)["version"] == 1  # untouched by a's changes


def test_nothing_is_kept_that_a_change_overtook_while_it_was_loading(cache, announce):
    def load_while_it_changes(n):
        announce("a")  # the owner changes it after answering the load
        return {"name": "a", "version": n}

    load = Loader(load_while_it_changes)
    assert cache.get("key-a", load)["version"] == 1
    assert cache.get("key-a", load)["version"] == 2  # not kept: loaded again


def test_none_is_not_kept(cache):
    load = Loader(lambda n: None)
    cache.get("missing", load), cache.get("missing", load)
    assert load.loads == 2


def test_without_its_queue_the_cache_keeps_nothing_and_binds_again(cache, announce):
    load = Loader()
    cache.get("key-a", load)
    cache.connection.release()  # the connection lost, as when the broker restarts
    assert cache.get("key-a", load)["version"] == 2  # no queue: loaded, not served from memory
    assert cache.connection is None and cache.entries == {}
    assert cache.get("key-a", load)["version"] == 3  # a new queue, an empty cache
    assert cache.get("key-a", load)["version"] == 3
    announce("a")
    assert cache.get("key-a", load)["version"] == 4


def test_entries_expire(rabbit_config):
    cache = AnnouncedCache(
        rabbit_config["AMQP_URI"],
        SOURCE,
        [CHANGED],
        names_in=lambda *_: [],
        name_of=lambda value: value["name"],
        ttl=0,
    )
    load = Loader()
    try:
        cache.get("key-a", load), cache.get("key-a", load)
    finally:
        cache.close()
    assert load.loads == 2
