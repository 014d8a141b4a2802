"""Reading a run back as a person would: its timeline, per agent, filtered."""
