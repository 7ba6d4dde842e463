"""Checks: one module per area, each check one function registered with @check."""

from .registry import REGISTRY, CheckContext, Settings, check, run_checks

__all__ = ["REGISTRY", "CheckContext", "Settings", "check", "run_checks"]
