"""Pure queue rules: priority then FIFO, no backfill past an earlier job, caps, other nodes."""

from __future__ import annotations

from digits_gpu_broker import domain, order
from digits_gpu_broker.nvml import GpuInfo
from digits_gpu_broker.order import Waiting

GPUS = domain.gpu_devices(
    GpuInfo(index=i, uuid=f"u{i}", name="G", memory_total=1) for i in range(2)
)


def waiting(job: str, since: int, count: int = 1, priority: int = 0, user: str = "", **kw):
    return Waiting(
        job_id=job, holder="h", since=since, count=count, priority=priority, user=user, **kw
    )


def test_higher_priority_first_then_submission_order() -> None:
    """Priority 5 beats an older priority 0; equal priorities keep their order of arrival."""
    queue = [waiting("old", 1), waiting("urgent", 3, priority=5), waiting("new", 2)]
    assert [w.job_id for w in order.ordered(queue)] == ["urgent", "old", "new"]


def test_a_later_small_job_does_not_overtake_an_earlier_large_one() -> None:
    """One GPU free, an earlier job needs two: the later one-GPU job waits behind it."""
    queue = [waiting("big", 1, count=2), waiting("small", 2)]
    chosen, reason = order.admit(queue, "small", GPUS, {"gpu0"}, {}, 0)
    assert chosen is None and reason == "behind big"
    chosen, _ = order.admit(queue, "big", GPUS, set(), {}, 0)
    assert chosen is not None and [d.device_id for d in chosen] == ["gpu0", "gpu1"]


def test_free_devices_are_set_aside_for_earlier_jobs_in_turn() -> None:
    """Two free GPUs, three one-GPU jobs: the first two get them, the third waits."""
    queue = [waiting("a", 1), waiting("b", 2), waiting("c", 3)]
    got_b, _ = order.admit(queue, "b", GPUS, set(), {}, 0)
    assert got_b is not None and [d.device_id for d in got_b] == ["gpu1"]
    assert order.admit(queue, "c", GPUS, set(), {}, 0) == (None, "behind a")


def test_jobs_this_node_can_never_serve_do_not_block_it() -> None:
    """A job pinned to a GPU this node lacks waits for another node, not in front of others."""
    queue = [waiting("pinned", 1, device_indexes=[7]), waiting("any", 2)]
    assert order.admit(queue, "pinned", GPUS, set(), {}, 0) == (None, "not on this node")
    chosen, _ = order.admit(queue, "any", GPUS, set(), {}, 0)
    assert chosen is not None


def test_a_capped_user_waits_without_blocking_others() -> None:
    """With a cap of 1, alice's second job waits while bob's later job runs."""
    queue = [waiting("alice2", 1, user="alice"), waiting("bob1", 2, user="bob")]
    running = order.running_by_user(
        [
            domain.LeaseRecord(
                lease_id="l",
                job_id="alice1",
                holder="h",
                node_id="n",
                devices=["gpu0"],
                user="alice",
            )
        ]
    )
    assert running == {"alice": 1}
    assert order.admit(queue, "alice2", GPUS, {"gpu0"}, running, 1) == (None, "user cap")
    chosen, _ = order.admit(queue, "bob1", GPUS, {"gpu0"}, running, 1)
    assert chosen is not None and chosen[0].device_id == "gpu1"


def test_published_queue_numbers_positions_and_says_what_each_waits_for() -> None:
    """Positions start at 1 in serving order; reasons name the count, indexes or the cap."""
    queue = [
        waiting("a", 1, count=2),
        waiting("b", 2, device_indexes=[1]),
        waiting("c", 3, user="u"),
    ]
    entries = order.describe(queue, {"u": 2}, 2)
    assert [(e.job_id, e.position) for e in entries] == [("a", 1), ("b", 2), ("c", 3)]
    assert entries[0].reason == "waiting for 2 devices"
    assert entries[1].reason == "waiting for device index 1"
    assert entries[2].reason == "user u runs 2 jobs (cap 2)"


def test_submission_time_beats_arrival_order() -> None:
    """A job submitted earlier keeps its place even if its first ask came later."""
    queue = [
        waiting("asked-first", 1, submitted=200.0),
        waiting("submitted-first", 2, submitted=100.0),
    ]
    assert [w.job_id for w in order.ordered(queue)] == ["submitted-first", "asked-first"]
