"""Ray for work that outgrows one process: started on this machine or joined as a cluster, items run as tasks."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, Field

Item = TypeVar("Item")
Result = TypeVar("Result")


class RaySpec(BaseModel):
    """Where the tasks run: Ray on this machine with `workers` cores (default: all), or the cluster at `address`."""

    address: str | None = None
    workers: int | None = Field(default=None, ge=1)
    #: How often a task whose worker died is run again before it is reported lost.
    retries: int = Field(default=1, ge=0)


@contextmanager
def ray_started(spec: RaySpec) -> Iterator[Any]:
    """Ray, started (or joined) for the block and shut down after it, however it ends.

    Waiting on Ray blocks the thread, so inside `asyncio.run` (whose Ctrl-C handler only cancels a task at its
    next await) Ctrl-C is made to raise KeyboardInterrupt in the wait itself, for the block's duration.
    """
    import ray  # a second or two to import: only when tasks run

    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    ray.init(address=spec.address, num_cpus=None if spec.address else spec.workers, include_dashboard=False,
             log_to_driver=False, logging_level=logging.ERROR, ignore_reinit_error=True)
    try:
        if main:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        yield ray
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
        ray.shutdown()


def each_as_task(
    ray: Any, spec: RaySpec, function: Callable[..., Result], items: list[Item], shared: tuple[Any, ...],
    on_done: Callable[[Item, Result | None, str], None], may_submit: Callable[[], bool] = lambda: True,
) -> None:
    """`function(item, *shared)` for each item as a Ray task, at most two per core in flight, submitted while
    `may_submit()`; `on_done(item, result, "")` as each finishes, or `on_done(item, None, why)` for one whose
    worker died past its retries. Nothing is ever silently lost."""
    task = ray.remote(num_cpus=1, max_retries=spec.retries)(function)
    in_flight = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    submitted = 0
    pending: dict[Any, Item] = {}

    def submit() -> None:
        nonlocal submitted
        while submitted < len(items) and len(pending) < in_flight and may_submit():
            pending[task.remote(items[submitted], *shared)] = items[submitted]
            submitted += 1

    submit()
    while pending:
        (ready,), _ = ray.wait(list(pending), num_returns=1)
        item = pending.pop(ready)
        try:
            result, lost = ray.get(ready), ""
        except ray.exceptions.RayError as exc:  # the worker died past its retries, or its result did not arrive
            crashed = isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError)
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            result, lost = None, f"worker lost: {type(exc).__name__}" if crashed else \
                f"{type(exc).__name__}: {first_line}"
        on_done(item, result, lost)
        submit()
