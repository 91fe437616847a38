"""Unlearning methods: the base class, the registry, one file per method."""

from methods.adv import Adv
from methods.adv_imp import AdvImp
from methods.base import METHODS, UnlearningMethod, register_method
from methods.correct import Correct
from methods.finetune import FineTune
from methods.neggrad import NegGrad
from methods.oracle import Oracle
from methods.original import Original
from methods.rawp import RAWP
from methods.retrain import Retrain

__all__ = ["METHODS", "UnlearningMethod", "register_method", "Adv", "AdvImp", "Correct", "Oracle", "RAWP", "Original", "Retrain", "FineTune", "NegGrad"]
