"""Simulators with explicit, copyable state."""
