"""Unlearning methods: the base class and registry (`methods.base`), shared building blocks (`methods.blocks`), and
one file per method, each imported here so that its `@register_method` runs (as timm registers its models)."""

import importlib
import pkgutil

from methods.base import METHODS, Budget, UnlearningMethod, register_method

for _module in pkgutil.iter_modules(__path__):
    if not _module.ispkg and _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
globals().update({name: METHODS.get(name) for name in METHODS.names()})

__all__ = ["METHODS", "Budget", "UnlearningMethod", "register_method", *METHODS.names()]
