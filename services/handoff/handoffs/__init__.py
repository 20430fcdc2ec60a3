"""Handoffs."""
