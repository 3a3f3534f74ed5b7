"""The report: how much synthetic data helps, and from which k more stops helping, from a results table alone.

`build(results_csv, out_dir)` reads any results.csv with the contract columns (from a sweep, edited by hand,
or gathered from many machines) and writes report.md, accuracy_vs_multiple.png and summary.json. The sweep
calls the same function on the file it just wrote, so `python -m experiments.report` rebuilds its report
exactly. One job a module:

  table     results.csv's contract: the columns, writing and reading them, which runs failed
  analysis  the statistics: summary.json (best k on validation, gains paired by seed, saturation, axes, oracle)
  markdown  report.md's text
  plots     accuracy_vs_multiple.png and gain_vs_KEY.png per axis
  answer    the answer in a few lines (the end of `make sweep`)
"""

import math
import os

import numpy as np

from fer_jax.infra import io_utils
from fer_jax.infra.errors import UserError
import fer_jax.report.analysis as analysis
import fer_jax.report.answer as answer
import fer_jax.report.markdown as markdown
import fer_jax.report.plots as plots
import fer_jax.report.table as table

__all__ = ['analysis', 'answer', 'build', 'json_safe', 'markdown', 'plots', 'table']
TITLE = 'How far can generated faces help?'


def build(results_csv, out_dir, margin=0.01, title=None, failures=()):
  """Reads results_csv (and synthetic_quality.json beside it) and writes report.md, accuracy_vs_multiple.png
  (of the first cell, with axes), gain_vs_KEY.png per axis with more than one value and summary.json in
  out_dir; returns the summary. `failures` (objects with .name, .message and .log, as `executors.Failure`):
  the runs that did not finish, named in their own section of report.md."""
  if not (isinstance(margin, (int, float)) and math.isfinite(margin) and 0 < margin < 1):
    raise UserError(f'margin={margin!r}; expected a fraction in (0, 1), e.g. 0.01 for one point')
  rows = table.read_csv(results_csv)
  quality = table.read_quality(results_csv)
  s = analysis.summarize(rows, margin)
  os.makedirs(out_dir, exist_ok=True)
  plots.accuracy_vs_multiple(s, table.in_cell(rows, s.get('cell', {})), os.path.join(out_dir, plots.ACCURACY_PLOT))
  for key in plots.plotted_axes(s):
    plots.gain_vs_axis(s, key, os.path.join(out_dir, plots.axis_plot_name(key)))
  io_utils.write_json(os.path.join(out_dir, 'summary.json'), json_safe(s))
  io_utils.write_text(os.path.join(out_dir, 'report.md'), markdown.render(s, quality, title or TITLE, failures))
  return s


def json_safe(x):
  """nan/inf -> None (JSON has no NaN); None gan_seed keys stay out of the summary."""
  if isinstance(x, dict):
    return {k: json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [json_safe(v) for v in x]
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, np.generic):
    return json_safe(x.item())
  return x
