"""The Self-* critique loops as sessions: a generator and a critic, samplers and a voter, a coder and an executor."""
