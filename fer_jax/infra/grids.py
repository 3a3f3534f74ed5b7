"""The one face-grid writer: greyscale faces in rows, with column titles and row labels where a reader needs them.

Every picture of faces the project writes (the data preview, the identity GAN's samples, the expression GAN's
translations next to their ground truth, the synthetic set's first identities) goes through `save_grid`, so
they look alike and are all written atomically.
"""

import io
import itertools

import matplotlib
import numpy as np
from PIL import Image

from fer_jax.infra import io_utils

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position


def save_grid(rows, path, *, col_titles=None, row_titles=None, title=None, cell=1.2, dpi=100):
  """rows: a list of rows, each a list of uint8 faces [H, W, 1] (None = an empty cell) -> greyscale PNG `path`.

  col_titles label the columns above the first row; row_titles (one per row, '' for none) are written in the
  row's first cell, which is then left empty (None).
  """
  n_rows, n_cols = len(rows), max(len(r) for r in rows)
  fig, axes = plt.subplots(
    n_rows, n_cols, figsize=(cell * n_cols, cell * n_rows + (0.4 if title else 0.0)), squeeze=False
  )
  for r, c in itertools.product(range(n_rows), range(n_cols)):
    ax = axes[r, c]
    ax.axis('off')
    face = rows[r][c] if c < len(rows[r]) else None
    if face is not None:
      ax.imshow(np.asarray(face)[..., 0], cmap='gray', vmin=0, vmax=255)
    if r == 0 and col_titles:
      ax.set_title(col_titles[c], fontsize=8)
    if c == 0 and row_titles and row_titles[r]:
      ax.text(0.5, 0.5, row_titles[r], ha='center', va='center', fontsize=8, transform=ax.transAxes)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()) if title else (0, 0, 1, 1))
  buf = io.BytesIO()
  fig.savefig(buf, format='png', dpi=dpi)
  plt.close(fig)
  grey = Image.open(buf).convert('L')  # the faces are grey and the text black: one channel says it all
  with io_utils.atomic_path(path) as tmp:
    grey.save(tmp, format='PNG')
