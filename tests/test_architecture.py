"""The package's layers point down: infrastructure imports nothing of the study, data and models nothing above
them, and no module imports itself back through others (the data-source registry's plugins aside). Read from the
source, imports inside functions included, so a lazy import cannot hide a dependency."""

import ast
import os

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, 'fer_jax')
# Modules that import their registry, which imports them to register them: the one allowed cycle.
REGISTRY = {'fer_jax.data.sources'}
REGISTRY_PLUGINS = {'fer_jax.data.procedural_source', 'fer_jax.data.real_sources', 'fer_jax.data.synthetic_source'}
ABOVE_DATA = ('fer_jax.train', 'fer_jax.eval', 'fer_jax.synthetic', 'fer_jax.sweep', 'fer_jax.report')


def _modules():
  out = {}
  for folder, _, files in os.walk(PACKAGE):
    for f in files:
      if f.endswith('.py'):
        rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].replace(os.sep, '.')
        out[rel[: -len('.__init__')] if rel.endswith('.__init__') else rel] = os.path.join(folder, f)
  return out


def _imports(path, modules):
  """The fer_jax modules `path` imports anywhere in it."""
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [node.module] + [f'{node.module}.{a.name}' for a in node.names]
    found.update(n for n in names if n in modules)
  return found


def _graph():
  modules = _modules()
  return {m: _imports(p, modules) - {m} for m, p in modules.items()}


def test_data_and_models_import_nothing_above_them():
  graph = _graph()
  bad = {
    m: sorted(d for d in deps if d.startswith(ABOVE_DATA))
    for m, deps in graph.items()
    if m.startswith(('fer_jax.data', 'fer_jax.models'))
  }
  assert not {m: d for m, d in bad.items() if d}, bad


def test_infrastructure_imports_nothing_of_the_study():
  """`fer_jax.infra` (mesh, checkpoints, workdirs, files, writers, image helpers, executors) sits below every layer."""
  graph = _graph()
  bad = {
    m: sorted(d for d in deps if not d.startswith('fer_jax.infra'))
    for m, deps in graph.items()
    if m.startswith('fer_jax.infra')
  }
  assert not {m: d for m, d in bad.items() if d}, bad


def test_no_import_cycle_but_the_registrys():
  graph = _graph()
  for m in REGISTRY:
    graph[m] = graph[m] - REGISTRY_PLUGINS
  cycles, state = [], {}

  def visit(m, path):
    state[m] = 'open'
    for d in sorted(graph.get(m, ())):
      if state.get(d) == 'open':
        cycles.append(path[path.index(d) :] + [d])
      elif d not in state:
        visit(d, path + [d])
    state[m] = 'done'

  for m in sorted(graph):
    if m not in state:
      visit(m, [m])
  assert not cycles, cycles


def test_the_graph_is_read_at_all():
  """The checks above would pass on an empty graph: make sure the known edges are seen."""
  graph = _graph()
  assert 'fer_jax.data.sources' in graph['fer_jax.data.procedural_source']
  assert 'fer_jax.infra.parallel' in graph['fer_jax.train.classifier']
  assert 'fer_jax.train.generators' in graph['fer_jax.synthetic']
  assert 'fer_jax.infra.io_utils' in graph['fer_jax.infra.workdirs']
