"""CAMEL role-play: an AI user instructs, an AI assistant solves, under inception prompts, until a stop rule fires."""
