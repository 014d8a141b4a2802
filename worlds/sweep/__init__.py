"""Sweeps: a grid of scenarios × seeds × overrides, each run a Ray task, on this machine or a cluster."""
