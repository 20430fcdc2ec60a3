"""Kpis."""
