"""Touchpoints."""
