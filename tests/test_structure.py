"""The package's layout: every module in a layer, imports only sideways or down, no cycle, small units.

The layers, bottom to top (a module imports modules of its own layer or below):

0. foundations, no TensorFlow model code: the package, config (the schema), errors, files,
   assets, image_ops, labels;
1. the data the generator reads: charset, atlas;
2. the generator: synth and its parts;
3. the pipeline and the network: input_pipeline, data_service, models, losses, metrics, and the
   parts of serving that training shares (preprocess, image_bytes, angle_views);
4. what builds on the network: real_data, lexicon, the rest of serving;
5. training and reading: train and its parts, predict;
6. the commands: preview, bench, main, __main__.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "ocr_tf")
LAYERS = (
    ("ocr_tf", "ocr_tf.config", "ocr_tf.config_base", "ocr_tf.errors", "ocr_tf.files", "ocr_tf.assets",
     "ocr_tf.image_ops", "ocr_tf.labels"),
    ("ocr_tf.charset", "ocr_tf.atlas"),
    ("ocr_tf.synth",),
    ("ocr_tf.input_pipeline", "ocr_tf.data_service", "ocr_tf.models", "ocr_tf.losses", "ocr_tf.metrics",
     "ocr_tf.serving.preprocess", "ocr_tf.serving.image_bytes", "ocr_tf.serving.angle_views"),
    ("ocr_tf.real_data", "ocr_tf.lexicon", "ocr_tf.serving"),
    ("ocr_tf.train", "ocr_tf.predict"),
    ("ocr_tf.preview", "ocr_tf.bench", "ocr_tf.main", "ocr_tf.__main__"),
)
MAX_FUNCTION, MAX_CLASS, MAX_FILE = 100, 300, 600


def _modules() -> dict[str, str]:
  """module name -> file path, for every module of the package."""
  out = {}
  for folder, subfolders, files in os.walk(PACKAGE):
    subfolders[:] = [d for d in subfolders if d not in ("assets", "__pycache__")]
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        out[module[:-len(".__init__")] if module.endswith(".__init__") else module] = path
  return out


MODULES = _modules()


def _imports(path: str) -> set[str]:
  """The package modules a file imports (`from pkg import mod` counts as mod, not as pkg)."""
  deps = set()
  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
    if isinstance(node, ast.Import):
      deps |= {a.name for a in node.names if a.name in MODULES}
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in MODULES:
      subs = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
      deps |= subs or {node.module}
      if len(subs) < len(node.names):
        deps.add(node.module)
  return deps


def layer_of(module: str) -> int:
  """The layer of the longest prefix of `module` in LAYERS."""
  best, best_len = None, -1
  for i, names in enumerate(LAYERS):
    for name in names:
      if (module == name or module.startswith(name + ".")) and len(name) > best_len:
        best, best_len = i, len(name)
  if best is None:
    raise KeyError(module)
  return best


GRAPH = {m: _imports(p) - {m} for m, p in MODULES.items()}


def test_every_module_has_a_layer():
  missing = [m for m in MODULES if not any(m == n or m.startswith(n + ".") for names in LAYERS for n in names)]
  assert not missing, f"add these modules to a layer of tests/test_structure.py: {missing}"


def test_no_module_imports_one_above_its_layer():
  upward = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
            for m, deps in GRAPH.items() for d in deps if layer_of(d) > layer_of(m)]
  assert not upward, upward


def test_no_import_cycle():
  state, stack = {}, []

  def visit(m):
    state[m] = "open"
    stack.append(m)
    for d in sorted(GRAPH[m]):
      if state.get(d) == "open":
        pytest.fail("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
      if d not in state:
        visit(d)
    stack.pop()
    state[m] = "done"

  for m in sorted(GRAPH):
    if m not in state:
      visit(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_units_are_small(module):
  path = MODULES[module]
  source = open(path, encoding="utf-8").read()
  assert len(source.splitlines()) <= MAX_FILE, f"{path}: over {MAX_FILE} lines"
  for node in ast.walk(ast.parse(source)):
    limit = {ast.FunctionDef: MAX_FUNCTION, ast.AsyncFunctionDef: MAX_FUNCTION, ast.ClassDef: MAX_CLASS}.get(type(node))
    if limit:
      assert node.end_lineno - node.lineno + 1 <= limit, f"{path}:{node.lineno} {node.name} is over {limit} lines"
