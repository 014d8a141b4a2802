"""Cognition steps (perceive, plan, react, converse, reflect, answer): small modules an Agent calls, each testable alone."""
