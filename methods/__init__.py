"""Unlearning methods: the base class, the registry, one file per method."""

from methods.base import METHODS, UnlearningMethod, register_method
from methods.finetune import FineTune
from methods.neggrad import NegGrad
from methods.original import Original
from methods.retrain import Retrain

__all__ = ["METHODS", "UnlearningMethod", "register_method", "Original", "Retrain", "FineTune", "NegGrad"]
