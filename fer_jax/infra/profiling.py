"""Where the seconds go: a stage's or a run's wall time split into named parts.

Each trainer times its parts with one `Profile` (`with profile.part('input'): ...`) and writes `profile.summary()`
into its metrics.json as `profile_seconds` (a timing: every comparison of results leaves it out); the sweep
gathers them into WORKDIR/profile.json and a table (`table`). Parts are host wall time: with jax's asynchronous
dispatch a step's compute is paid where the host next waits for it (the logging interval's one sync), so the
loops time 'steps' as dispatch + that sync and never add a sync of their own.
"""

import contextlib
import time


class Profile:
  """Seconds per named part, summed over every time the part ran."""

  def __init__(self):
    self.seconds = {}
    self._t0 = time.perf_counter()

  @contextlib.contextmanager
  def part(self, name):
    t0 = time.perf_counter()
    try:
      yield
    finally:
      self.add(name, time.perf_counter() - t0)

  def add(self, name, seconds):
    self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)

  def summary(self):
    """The parts, and 'other': the wall time since the profile began that no part holds."""
    other = time.perf_counter() - self._t0 - sum(self.seconds.values())
    return {**self.seconds, 'other': max(other, 0.0)}

  def timed(self, name, iterator):
    """`iterator`'s items, the time spent waiting for each added to `name` (a loop's input)."""
    iterator = iter(iterator)
    while True:
      with self.part(name):
        item = next(iterator, _END)
      if item is _END:
        return
      yield item


_END = object()


def table(rows, parts):
  """A markdown table: one row per (name, seconds dict) of `rows`, a column per part of `parts` and the total."""
  lines = ['| | ' + ' | '.join(parts) + ' | total |', '|---' * (len(parts) + 2) + '|']
  for name, seconds in rows:
    cells = [f'{seconds[p]:.1f}' if p in seconds else '' for p in parts]
    lines.append(f'| {name} | ' + ' | '.join(cells) + f' | {sum(seconds.values()):.1f} |')
  return '\n'.join(lines)
