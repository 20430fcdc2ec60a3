"""The history simulator: a deterministic book of accounts over months (``simulate``), and a loader
that feeds it to a running suite through its public APIs and topics (``load``)."""

from sim.book import DRIVER_FEATURES, DRIVERS, Book, SimAccount, simulate

__all__ = ["DRIVERS", "DRIVER_FEATURES", "Book", "SimAccount", "simulate"]
