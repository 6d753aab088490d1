"""Name -> object registries: a new task, method or pruning strategy is one registration next to its
definition, in this package or in a plugin.

Every registry lives here, at the bottom of the layers, so that any layer can read one without
importing the layer that fills it. What fills them is a module named by an entry point in the group
``pruning_harness.plugins``, imported (and so registering what it registers) the first time any
registry is read. The built-in methods and tasks are two such entry points of this distribution
(``pyproject.toml``): they register through the same path as any plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from harness.core.errors import HarnessError
from harness.core.names import canonical, unknown

if TYPE_CHECKING:
    from methods.pruning import PruningStrategy
    from methods.recipes import Recipe
    from methods.spec import Retraining

T = TypeVar("T")
PLUGIN_GROUP = "pruning_harness.plugins"
BUILT_IN = ("methods", "tasks")  # this distribution's own entry points: loaded before any plugin
_plugins_loaded = False


def load_plugins() -> list[str]:
    """Import every plugin module once; a plugin that fails to import is one line naming it."""
    global _plugins_loaded
    if _plugins_loaded:
        return []
    _plugins_loaded = True
    loaded = []
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: (e.value not in BUILT_IN, e.name)):
        try:
            entry.load()
        except Exception as e:
            reason = " ".join(str(e).split())[:200]
            raise HarnessError(f"plugin {entry.name!r} ({entry.value}, entry point group {PLUGIN_GROUP}) "
                               f"failed to load: {type(e).__name__}: {reason}") from None
        loaded.append(entry.name)
    return loaded


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise HarnessError(unknown(self.kind, name, sorted(self._entries))) from None

    def canonical(self, name: str) -> str:
        """The registered name a user means: ``name`` itself, or the one registered name equal to it but
        for case (``LLR`` is ``llr``); an unknown name is refused with the closest valid one."""
        load_plugins()
        found = canonical(name, sorted(self._entries))
        if found is None:
            raise HarnessError(unknown(self.kind, name, sorted(self._entries)))
        return found

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


TASKS: Registry[Callable[[], Any]] = Registry("task")  # name -> a factory of tasks.spec.Task
METHODS: Registry[Retraining] = Registry("method")
PRUNING: Registry[PruningStrategy] = Registry("pruning strategy")
RECIPES: Registry[Recipe] = Registry("recipe")
METRICS: Registry[Any] = Registry("metric")  # name -> harness.core.metrics.Metric
EXECUTORS: Registry[Callable[..., Any]] = Registry("executor")  # name -> (WorkerContext, ExecutorOptions) -> Executor


def checked_task(name: str, task: Any) -> Any:
    """``task``, made by the factory registered as ``name``: store folders use the registered name and
    MLflow experiments the task's own, so the two must be one."""
    if task.name != name:
        raise HarnessError(f"task registered as {name!r} names itself {task.name!r}; valid: the same name in "
                           "register_task(...) and Task(name=...)")
    return task
