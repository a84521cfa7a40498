"""The batch store's leases on a real database: a runner renews the lease on the batch it
runs, and a claim passes over a batch another runner holds. Renewing once read the status in
a transaction it had already committed, and failed every time: the runner then let the batch
go and took it again at once, starting its lines in flight a second time."""

from __future__ import annotations

from stackyard.batches.store import BatchStore
from stackyard.store.db import Database


def batch(store: BatchStore) -> str:
    record = store.create(
        endpoint="/v1/chat/completions",
        input_file_id="file-x",
        key_id=None,
        team_id=None,
        total=1,
        metadata=None,
    )
    return str(record.id)


def test_a_runner_renews_its_lease_and_reads_the_batchs_status(db: Database) -> None:
    store = BatchStore(db)
    batch_id = batch(store)
    assert store.claim("one", lease=60) == batch_id
    store.move(batch_id, "in_progress")
    assert store.renew(batch_id, "one", lease=60) == "in_progress"
    assert store.renew(batch_id, "two", lease=60) is None  # not its lease
    store.cancel(batch_id, team_id=None, admin=True, endpoints=("/v1/chat/completions",))
    assert store.renew(batch_id, "one", lease=60) == "cancelling"


def test_a_claim_passes_over_a_batch_another_runner_holds(db: Database) -> None:
    store = BatchStore(db)
    first, second = batch(store), batch(store)
    assert store.claim("one", lease=60) == first
    assert store.claim("two", lease=60) == second  # the first is held: the next is taken
    assert store.claim("three", lease=60) is None
    store.release(first, "one")
    assert store.claim("three", lease=60) == first
