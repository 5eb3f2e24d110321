"""Work that many green threads ask for at about the same time, done in
one go for all of them (a group commit): under load, when dozens of events
are handled at once, one round trip to the database serves them all
instead of one each.

`together(sessions, work)(items)`: `work(sessions, all items)` over a batch
holding `items`. The first caller to arrive while no batch is under way
runs its own items with every other caller's that arrived meanwhile; those
callers wait for that run, then return its result or raise its error (each
then tries again as it would have alone). The first of those who arrived
during a run runs the next batch. A caller thus returns only once its own
items are done, as it would with a round trip of its own; alone, it waits
for nobody.
"""

import threading
import weakref


class Together:
    def __init__(self, sessions, work):
        # weakly, so that the registry below (weak on its keys) lets a
        # service's Sessions go once its container is gone
        self.sessions = weakref.ref(sessions)
        self.work = work
        self.lock = threading.Lock()
        self.queued = []  # [_Turn] arrived while a batch was under way
        self.running = False

    def __call__(self, items):
        mine = _Turn(items)
        with self.lock:
            self.queued.append(mine)
            leads = not self.running
            self.running = True
        if not leads:
            mine.done.wait()  # run by another, or handed the lead
            if not mine.leads:
                if mine.error is not None:
                    raise mine.error
                return mine.result
        with self.lock:
            turns, self.queued = self.queued, []
        try:
            result = self.work(self.sessions(), [item for turn in turns for item in turn.items])
            for turn in turns:
                turn.result = result
            return result
        except BaseException as error:
            for turn in turns:
                turn.error = (
                    error
                    if isinstance(error, Exception)
                    else ConnectionError(f"the batch was cut short ({type(error).__name__})")
                )
            raise
        finally:
            with self.lock:  # the next to run a batch: the first who arrived meanwhile
                if self.queued:
                    self.queued[0].leads = True
                    self.queued[0].done.set()
                else:
                    self.running = False
            for turn in turns:
                if turn is not mine:
                    turn.done.set()


class _Turn:
    def __init__(self, items):
        self.items = items
        self.done = threading.Event()
        self.leads = False
        self.result = self.error = None


_MADE = weakref.WeakKeyDictionary()  # Sessions -> {work: its Together}
_MADE_LOCK = threading.Lock()


def together(sessions, work):
    """The process's one `Together` for `work` on `sessions` (a service's
    database: every worker of the container shares it)."""
    with _MADE_LOCK:
        made = _MADE.setdefault(sessions, {})
        if work not in made:
            made[work] = Together(sessions, work)
        return made[work]
