"""Models loaded once and shared: by the app's tabs, its users, and a notebook that calls several functions."""
from __future__ import annotations

import threading
from collections import OrderedDict

from core.models import zoo


class ModelCache:
    """A thread-safe, size-bounded cache of loaded models keyed by name.

    Two callers asking for the same model at once wait for one load. A run's student is keyed by its newest
    checkpoint as well, so a model that keeps training is reloaded when it has changed.
    """

    def __init__(self, max_models: int = 6):
        self.max_models = max_models
        self._models: OrderedDict[tuple, zoo.LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    @staticmethod
    def _key(name: str, attentions: bool) -> tuple:
        version = None
        if name.startswith("run:") or zoo.is_run_folder(name):
            version = zoo.run_model_version(name)  # "init" for run:<id>@init (it never changes), else run_version
        return (name, attentions, version)

    def is_loaded(self, name: str, attentions: bool = False) -> bool:
        return self._key(name, attentions) in self._models

    def get(self, name: str, attentions: bool = False) -> zoo.LoadedModel:
        key = self._key(name, attentions)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            loaded = zoo.load(name, attentions=attentions)
            with self._lock:
                self._models[key] = loaded
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
                self._loading.pop(key, None)
            return loaded
