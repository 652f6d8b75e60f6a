"""Validation curves as a PNG: top-100 accuracy against epoch, one line per run."""
from typing import Dict, List, Optional

import matplotlib

matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from tensorflow.io import gfile  # noqa: E402

from shared import names  # noqa: E402


def plot_validation_curves(histories: Dict[str, List[Dict]], baseline: Optional[float],
                           path: str, k: str = names.GATE_KEY) -> None:
  """Plots validation top-K against epoch as a PNG: one line per history (its validated
  epochs), the popularity baseline dashed.

  Args:
    histories: {line label: history.json's per-epoch entries}.
    baseline: the popularity baseline's top-K, or None.
    path: the PNG to write.
    k: the K plotted, as history.json keys it.
  """
  figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
  for name, history in histories.items():
    points = [(e['epoch'], e['val_top_k'][k]) for e in history if 'val_top_k' in e]
    axes.plot([p[0] for p in points], [p[1] for p in points], marker='.', label=name)
  if baseline is not None:
    axes.axhline(baseline, linestyle='--', color='grey',
                 label=f'most popular ({baseline:.3f})')
  axes.set_xlabel('epoch')
  axes.set_ylabel(f'validation top-{k} accuracy')
  axes.set_title(f'Top-{k} accuracy over the whole catalog')
  axes.grid(alpha=0.3)
  axes.legend()
  figure.tight_layout()
  with gfile.GFile(path, 'wb') as file:
    figure.savefig(file, format='png')
  plt.close(figure)
