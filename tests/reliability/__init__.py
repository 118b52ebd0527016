"""Reliability and security: bad inputs, hostile inputs, faults and load (docs/reliability.md)."""
