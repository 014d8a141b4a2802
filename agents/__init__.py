"""Who acts: agents, their cognition, and the one gateway every model call goes through."""
