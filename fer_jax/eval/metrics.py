"""Classification metrics from labels and predictions (host numpy; computed once per evaluation)."""

import numpy as np


def confusion_matrix(labels, preds, num_classes):
  """[true, predicted] counts."""
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (np.asarray(labels), np.asarray(preds)), 1)
  return cm


def classification_metrics(labels, preds, num_classes, class_names=None):
  """accuracy, macro-F1 (over classes present in labels or predictions), per-class recall, confusion."""
  cm = confusion_matrix(labels, preds, num_classes)
  tp = np.diag(cm).astype(np.float64)
  support, predicted = cm.sum(1), cm.sum(0)
  recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
  precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
  f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
  present = (support + predicted) > 0
  names = list(class_names or range(num_classes))
  return {
    'accuracy': float(tp.sum() / max(cm.sum(), 1)),
    'macro_f1': float(f1[present].mean()) if present.any() else 0.0,
    'per_class_recall': {str(names[i]): float(recall[i]) for i in range(num_classes)},
    'confusion': cm.tolist(),
    'n': int(cm.sum()),
  }


def plot_confusion(ax, cm, class_names, title):
  cm = np.asarray(cm, np.float64)
  norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
  ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
  ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha='right')
  ax.set_yticks(range(len(class_names)), class_names)
  ax.set_xlabel('predicted')
  ax.set_ylabel('true')
  ax.set_title(title)
  for i in range(cm.shape[0]):
    for j in range(cm.shape[1]):
      ax.text(
        j, i, f'{int(cm[i, j])}', ha='center', va='center', fontsize=8, color='white' if norm[i, j] > 0.5 else 'black'
      )
