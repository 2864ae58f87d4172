"""Tasks: what the shared trainer learns. ``get_task(name)`` returns a :class:`Task` record (data sets, model
family, loss, metric, evaluation hook, input shape, config defaults) from the registry ``TASKS``; importing this
package registers reid, classification and pointcloud. ``new_config(task)`` is a Config with the task's defaults.
"""

from __future__ import annotations

from ..config import DEFAULT_TASK, Config
from ..config import new_config as _new_config
from . import classification, detection, pointcloud, reid  # noqa: F401  (registration side effects)
from .base import TASKS, Task, get_task, list_tasks, register_task, task_defaults


def new_config(task: str = DEFAULT_TASK) -> Config:
    """A Config for ``task``: the dataclass defaults, then the task's own (what ``bireid train --task`` starts
    from)."""
    return _new_config(task, task_defaults)


__all__ = ["TASKS", "Task", "get_task", "list_tasks", "new_config", "register_task", "task_defaults"]
