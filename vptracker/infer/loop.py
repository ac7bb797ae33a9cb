"""Batched tracking loops: every active sequence's next request goes to the engine in one call.

A tracker is a per-sequence state machine (pytracking's ``initialize``/``track``, turned inside out
so that many sequences can step together): ``next_request()`` gives the request of its next step
or ``None`` when the sequence is finished, and ``update(answer)`` consumes the model's answer.
Sequences are independent, so :func:`run_batched` keeps up to ``concurrency`` of them active and
sends all their pending requests in one engine call per step (the released VPTracker loop sends one
request per call). :func:`run_async` gives each sequence its own coroutine instead, for engines that
batch continuously (vLLM), so a slow sequence never holds the others back.
"""
from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from vptracker.infer.engine import Engine, Request


class Tracker(Protocol):
    name: str

    def next_request(self) -> Request | None: ...

    def update(self, answer: str) -> None: ...


class TrackerBase(abc.ABC):
    """Shared bookkeeping: the pending request, the audit log of every answer, frame counting."""

    name: str = ""

    def __init__(self, name: str):
        self.name = name
        self.responses: list[dict] = []   # one entry per model answer, for responses.jsonl
        self.frames_done = 0              # frames whose result is final (progress and speed)
        self._pending: Request | None = None

    def next_request(self) -> Request | None:
        if self._pending is None:
            self._pending = self._next()
            if self._pending is not None:  # engines and fakes may key on the sequence
                self._pending.audit.setdefault("sequence", self.name)
        return self._pending

    def update(self, answer: str) -> None:
        request = self._pending
        if request is None:
            raise RuntimeError(f"{self.name}: update() called with no pending request")
        self._pending = None
        answer = answer if isinstance(answer, str) else ""
        self.responses.append({"sequence": self.name, "step": len(self.responses), "request": request.to_json(),
                               "answer": answer})
        self._consume(request, answer)

    # subclasses -------------------------------------------------------------------------------
    @abc.abstractmethod
    def _next(self) -> Request | None:
        """The request of the next step, or None when the sequence is finished."""

    @abc.abstractmethod
    def _consume(self, request: Request, answer: str) -> None:
        """Updates the tracker's state from the model's answer to ``request``."""


@dataclass
class LoopStats:
    wall_s: float = 0.0
    engine_s: float = 0.0
    engine_calls: int = 0
    requests: int = 0
    frames: int = 0
    batch_sizes: list[int] = field(default_factory=list)

    @property
    def outside_engine_frac(self) -> float:
        return (self.wall_s - self.engine_s) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


def run_batched(engine: Engine, trackers: Iterable[Tracker], concurrency: int = 16,
                on_finish: Callable[[Tracker], None] | None = None,
                on_step: Callable[[LoopStats], None] | None = None) -> LoopStats:
    """Steps all active trackers together: one ``engine.generate`` call per step.

    Trackers are started in the given order; when one finishes, ``on_finish(tracker)`` runs (write
    its files there) and the next waiting tracker takes its place.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    stats = LoopStats()
    start = time.perf_counter()
    waiting = iter(trackers)
    active: list[Tracker] = []

    def frames(ts) -> int:
        return sum(getattr(t, "frames_done", 0) for t in ts)

    finished_frames = 0
    while True:
        while len(active) < concurrency:
            nxt = next(waiting, None)
            if nxt is None:
                break
            active.append(nxt)
        if not active:
            break
        step: list[tuple[Tracker, Request]] = []
        pending = list(active)
        while pending:
            tracker = pending.pop(0)
            request = tracker.next_request()
            if request is None:  # finished: hand it over; a waiting tracker joins this very step
                active.remove(tracker)
                finished_frames += getattr(tracker, "frames_done", 0)
                if on_finish is not None:
                    on_finish(tracker)
                nxt = next(waiting, None)
                if nxt is not None:
                    active.append(nxt)
                    pending.append(nxt)
            else:
                step.append((tracker, request))
        if not step:
            continue
        t0 = time.perf_counter()
        answers = engine.generate([request for _, request in step])
        stats.engine_s += time.perf_counter() - t0
        if len(answers) != len(step):
            raise RuntimeError(f"engine returned {len(answers)} answers for {len(step)} requests")
        stats.engine_calls += 1
        stats.requests += len(step)
        stats.batch_sizes.append(len(step))
        for (tracker, _), answer in zip(step, answers):
            tracker.update(answer)
        stats.frames = finished_frames + frames(active)
        stats.wall_s = time.perf_counter() - start
        if on_step is not None:
            on_step(stats)
    stats.frames = finished_frames
    stats.wall_s = time.perf_counter() - start
    return stats


def run_async(engine, trackers: Iterable[Tracker], concurrency: int = 64,
              on_finish: Callable[[Tracker], None] | None = None,
              on_step: Callable[[LoopStats], None] | None = None) -> LoopStats:
    """One coroutine per sequence over ``engine.agenerate``; at most ``concurrency`` in flight."""
    if not hasattr(engine, "agenerate"):
        raise TypeError(f"{type(engine).__name__} has no agenerate(); use run_batched")
    stats = LoopStats()
    start = time.perf_counter()

    async def drive(tracker: Tracker, slots: asyncio.Semaphore) -> None:
        async with slots:
            while (request := tracker.next_request()) is not None:
                t0 = time.perf_counter()
                answer = await engine.agenerate(request)
                # concurrent calls overlap: count engine time once, as wall time with >= 1 in flight
                stats.engine_s += time.perf_counter() - t0
                stats.engine_calls += 1
                stats.requests += 1
                tracker.update(answer)
            stats.frames += getattr(tracker, "frames_done", 0)
            if on_finish is not None:
                on_finish(tracker)
            stats.wall_s = time.perf_counter() - start
            if on_step is not None:
                on_step(stats)

    async def main() -> None:
        slots = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(drive(t, slots) for t in trackers))

    asyncio.run(main())
    stats.wall_s = time.perf_counter() - start
    # engine_s summed over overlapping coroutines can exceed wall time; it is not a fraction here
    stats.engine_s = min(stats.engine_s, stats.wall_s)
    return stats
