"""Dialogue as data: quality figures over a run's conversations and sessions, and near-duplicate detection."""
