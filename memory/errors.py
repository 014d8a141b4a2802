"""The one base class for "the user asked for something we cannot do", shared by every layer.

It lives here because `memory` is the lowest layer (worlds → agents → memory) and imports nothing
else of simulacra: `agents` and `worlds` may import it without any import pointing upward.
"""


class InputError(Exception):
    """Bad input (a scenario, model or embedder spec, run folder, option): the CLI exits 2, no traceback."""
