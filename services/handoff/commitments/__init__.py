"""Commitments."""
