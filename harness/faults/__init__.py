"""Faults: one small module per family, registered by kind name, always rolled back."""

from .base import Fault, injected
from .combined import after, combined
from .gated import field_set, when
from .registry import kinds, make_fault
from .schedule import FaultWindow, Schedule

__all__ = ["Fault", "FaultWindow", "Schedule", "after", "combined", "field_set", "injected", "kinds", "make_fault", "when"]
