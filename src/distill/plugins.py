"""The user's own models, methods and datasets: explicit imports and entry points.

Nothing here runs on its own. Code is imported only when the user names it: a top-level
``imports: [mypkg.models, ./my_methods.py]`` in the experiment YAML, ``--import MODULE`` on the
command line, or an installed package that declares an entry point in the group
``distill.plugins`` (loaded the first time a name is not found among the built-in ones, or when
the CLI lists the choices). Importing a module runs its ``@register_model`` /
``@register_method`` decorators, after which the names work like the built-in ones.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from distill.errors import ConfigError

ENTRY_POINT_GROUP = "distill.plugins"
_loaded_files: dict[Path, ModuleType] = {}
_entry_points_loaded = False


def is_file_import(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def resolve_import(spec: str, base_dir: Path | None = None) -> str:
    """A file path made absolute (relative to ``base_dir``, the YAML's folder, else the current folder)."""
    if not is_file_import(spec):
        return spec
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return str(path.resolve())


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename]
    if not user:
        return ""
    return f" ({Path(user[-1].filename).name} line {user[-1].lineno})"


def _import_file(path: Path) -> ModuleType:
    if path in _loaded_files:  # a second import would register every name twice
        return _loaded_files[path]
    if not path.is_file():
        raise ConfigError(f"import '{path}': no such file; give a path to a .py file or a module name")
    module_name = f"distill_user_{path.stem}_{abs(hash(str(path))) % 10**8}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"import '{path}': not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # The file's own folder is importable, so a plugin file can import its siblings.
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise ConfigError(f"import '{path}' failed: {type(exc).__name__}: {exc}{_where(exc)}") from None
    finally:
        sys.path.remove(str(path.parent))
    _loaded_files[path] = module
    return module


def _import_module(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    # The console script does not put the current folder on sys.path as `python -m` does.
    added = str(Path.cwd()) not in sys.path and "" not in sys.path
    if added:
        sys.path.append(str(Path.cwd()))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ConfigError(f"import '{name}': no module named '{exc.name}'; install it, put it on PYTHONPATH "
                              f"or give a path to a .py file (imports: [./my_models.py])") from None
        raise ConfigError(f"import '{name}' failed: {type(exc).__name__}: {exc}{_where(exc)}") from None
    except Exception as exc:
        raise ConfigError(f"import '{name}' failed: {type(exc).__name__}: {exc}{_where(exc)}") from None


def import_user_code(specs: Iterable[str], base_dir: Path | None = None) -> list[ModuleType]:
    """Import each module name or .py path the user listed (``imports:`` / ``--import``)."""
    modules = []
    for spec in specs:
        resolved = resolve_import(spec, base_dir)
        modules.append(_import_file(Path(resolved)) if is_file_import(spec) else _import_module(resolved))
    return modules


def has_entry_points() -> bool:
    """Whether an installed package declares ``distill.plugins`` entry points (without loading them)."""
    return bool(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_entry_points() -> None:
    """Import every installed ``distill.plugins`` entry point, once per process.

    An entry point names a module (``mypkg.distill_plugin``) or a function, which is then called
    with no arguments to register its names.
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry_point.load()
            if callable(loaded) and not isinstance(loaded, ModuleType | type):
                loaded()
        except Exception as exc:
            raise ConfigError(f"plugin '{entry_point.name}' ({entry_point.value}, entry point group "
                              f"{ENTRY_POINT_GROUP}) failed to load: {type(exc).__name__}: {exc}") from None
