"""The replay page: one self-contained HTML file (its CSS, script and data inline) that opens from disk offline."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources

from worlds.timeline.replay import ReplayModel

#: What may break out of a `<script>` element or end a JavaScript string, and the JSON escape for each.
_UNSAFE_IN_SCRIPT = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def script_safe_json(value: object) -> str:
    """JSON that can sit inside `<script type="application/json">`: no `</script>`, no comment or line-break tricks."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: _UNSAFE_IN_SCRIPT[m.group()], text)


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render_page(model: ReplayModel) -> str:
    """The whole page; the policy lets only its own script run, so even markup that slipped in could not."""
    script = _asset("replay.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    policy = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
              "base-uri 'none'; form-action 'none'")
    parts = {"policy": policy, "title": html.escape(f"replay: {model.run}"), "css": _asset("replay.css"),
             "script": script, "data": script_safe_json(model.model_dump(mode="json"))}
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _asset("page.html"))  # one pass: data is never re-read
