"""Pacing under Telegram's limits: sliding windows counted from each send's completion."""

from __future__ import annotations

import asyncio
import math

import pytest

from bot.telegram.pacing import CONVERSATION_SECONDS, Pacer, Priority, SlidingWindow, _PriorityLock, rate_share


def test_rates_become_windows_that_never_add_up_to_more_than_configured() -> None:
    assert (SlidingWindow.per(25, 1.0).count, SlidingWindow.per(25, 1.0).seconds) == (25, 1.0)
    # two senders sharing 25/s: 12 each in any second, 24 together, never 26
    assert (SlidingWindow.per(12.5, 1.0).count, SlidingWindow.per(12.5, 1.0).seconds) == (12, 1.0)
    assert (SlidingWindow.per(0.5, 1.0).count, SlidingWindow.per(0.5, 1.0).seconds) == (1, 2.0)
    assert (SlidingWindow.per(20, 60.0).count, SlidingWindow.per(20, 60.0).seconds) == (20, 60.0)


def test_a_full_window_waits_for_the_oldest_completion_to_age_out() -> None:
    window = SlidingWindow(count=2, seconds=1.0)
    assert window.wait_time(0.0) == 0.0
    window.start(0.0)
    assert math.isclose(window.wait_time(0.0), 0.4)  # spaced: 80 % of the window over 2 sends
    window.start(0.4)
    assert window.wait_time(0.5) == math.inf  # both in flight: wait for one to finish
    window.finish(0.3)
    window.finish(0.6)
    # the server saw the first one no later than 0.3: a third may start once that is a second old
    assert math.isclose(window.wait_time(0.7), 0.6)
    assert window.wait_time(1.3) == 0.0


async def test_one_chats_sends_leave_in_the_order_they_asked() -> None:
    pacer = Pacer(global_rate=1000, per_chat_rate=1000, per_group_minute=20)
    order: list[int] = []

    async def send(n: int) -> None:
        async with pacer.slot(42):
            await asyncio.sleep(0)
            order.append(n)

    await asyncio.gather(*(send(n) for n in range(10)))
    assert order == list(range(10))


async def test_a_global_pause_holds_every_chat() -> None:
    now = [100.0]
    pacer = Pacer(global_rate=1000, per_chat_rate=1000, per_group_minute=20, monotonic=lambda: now[0])
    pacer.pause(5)
    assert pacer.paused_for() == 5
    assert not pacer.recently_sent_to(7)
    now[0] = 105.0
    async with pacer.slot(7):
        assert pacer.paused_for() == 0
    assert pacer.recently_sent_to(7)


def test_senders_share_the_whole_budget_and_never_more() -> None:
    names = ["sender:a", "sender:b"]
    assert [rate_share(25, names, n) for n in names] == [13, 12]
    assert rate_share(25, ["sender:a"], "sender:a") == 25
    three = ["sender:a", "sender:b", "sender:c"]
    assert sum(rate_share(25.5, three, n) for n in three) == 25
    assert rate_share(1, names, "sender:b") == 0.5  # less than one each: split evenly
    assert rate_share(25, names, "sender:unlisted") == 12  # not yet counted: the smaller part


async def test_under_a_full_window_first_answers_go_before_next_answers_and_notifications() -> None:
    """A reminder wave and a busy conversation are queued when a new person writes: when a slot frees,
    the newcomer hears back first, then the conversation, then the notifications, each in its own order."""
    clock = [0.0]
    pacer = Pacer(global_rate=1, per_chat_rate=1000, per_group_minute=20, monotonic=lambda: clock[0])
    order: list[str] = []

    async def send(name: str, chat_id: int, priority: Priority) -> None:
        async with pacer.slot(chat_id, priority):
            order.append(name)

    busy = asyncio.create_task(send("busy chat, earlier", 7, Priority.NOTIFICATION))
    await asyncio.sleep(0)
    clock[0] = 0.1
    waiting = [
        asyncio.create_task(send("reminder to 2", 2, Priority.NOTIFICATION)),
        asyncio.create_task(send("conversation 3", 3, Priority.ANSWER)),
        asyncio.create_task(send("reminder to 4", 4, Priority.NOTIFICATION)),
        asyncio.create_task(send("newcomer 5", 5, Priority.FIRST_ANSWER)),
    ]
    for _ in range(5):
        await asyncio.sleep(0)
    for step in range(1, 6):  # one send a second
        clock[0] = 0.1 + step * 1.1
        pacer._poke()
        for _ in range(10):
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(busy, *waiting), 5)
    assert order == ["busy chat, earlier", "newcomer 5", "conversation 3", "reminder to 2", "reminder to 4"]


def test_a_chat_sent_to_lately_is_in_a_conversation() -> None:
    clock = [100.0]
    pacer = Pacer(global_rate=25, per_chat_rate=1, per_group_minute=20, monotonic=lambda: clock[0])
    assert pacer.answer_priority(5) == Priority.FIRST_ANSWER
    pacer._last_sent[5] = 99.0
    assert pacer.answer_priority(5) == Priority.ANSWER
    clock[0] = 99.0 + CONVERSATION_SECONDS + 0.1
    assert pacer.answer_priority(5) == Priority.FIRST_ANSWER


async def test_a_sender_cancelled_while_deferring_never_leaves_two_holders() -> None:
    """A send that deferred to a more urgent one and is then cancelled (its update ended, the service stops)
    gives nothing back it does not hold: the more urgent send keeps the overall turn alone, and the turn
    passes on in order once it is done."""
    lock = _PriorityLock()
    first = await lock.acquire(Priority.NOTIFICATION)
    urgent = asyncio.create_task(lock.acquire(Priority.FIRST_ANSWER))
    await asyncio.sleep(0)
    deferring = asyncio.create_task(lock.defer(first))
    urgent_place = await urgent  # the turn went to the urgent send
    deferring.cancel()
    with pytest.raises(asyncio.CancelledError):
        await deferring
    lock.release(first)  # what the cancelled sender's `finally` does: it no longer holds the turn
    later = [asyncio.create_task(lock.acquire(Priority.ANSWER)) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert not any(t.done() for t in later)  # the urgent send still holds it alone
    lock.release(urgent_place)
    await asyncio.sleep(0)
    assert [t.done() for t in later] == [True, False]  # one holder at a time, in order
    lock.release(later[0].result())
    await asyncio.wait_for(later[1], 1)
