"""Compliance: who may launch what in production, and on what record."""
