"""Where and when: clock, places, scenarios, the engine, the event log, runs and the command line."""
