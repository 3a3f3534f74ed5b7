"""Rebuild a study's report from a results table alone.

  python -m experiments.report --results=runs/quick/results.csv --out=runs/quick_report [--margin=0.01]

Reads any results.csv with the contract columns (a sweep's, an edited one, or runs gathered from many
machines; synthetic_quality.json beside it is used when present) and writes OUT/report.md,
OUT/accuracy_vs_multiple.png and OUT/summary.json: the same files the sweep writes, from the same function. It
prints the answer in a few lines, as the sweep does at its end.
"""

import os

from absl import app, flags

from configs import default
from fer_jax import report
from fer_jax.infra.errors import UserError

_RESULTS = flags.DEFINE_string('results', None, 'A results.csv (one row per classifier run).')
_OUT = flags.DEFINE_string('out', None, 'Folder for report.md, accuracy_vs_multiple.png and summary.json.')
_MARGIN = flags.DEFINE_float(
  'margin', None, 'Saturation margin as a fraction (default: sweep.margin of the default config, 0.01 = one point).'
)


def main(argv):
  if len(argv) > 1:
    raise SystemExit(f'error: unexpected arguments {" ".join(argv[1:])}')
  if not _RESULTS.value or not _OUT.value:
    raise SystemExit('error: --results=PATH/results.csv and --out=DIR are both required')
  margin = default.get_config().sweep.margin if _MARGIN.value is None else _MARGIN.value
  try:
    s = report.build(_RESULTS.value, _OUT.value, margin=margin)
  except UserError as e:
    raise SystemExit(f'error: {e}') from None
  quality = report.table.read_quality(_RESULTS.value)
  for line in report.answer.answer_lines(s, quality, os.path.join(_OUT.value, 'report.md')):
    print(line)


if __name__ == '__main__':
  app.run(main)
