"""Tabby's server API on this server's engine: the Tabby agent, and every editor it serves, works unchanged.

Tabby's editor plugins (IntelliJ and the other JetBrains IDEs, Vim, Eclipse, and any editor with a language
client: Neovim's built-in one, Emacs' lsp-mode, Helix, through `tabby-agent --lsp --stdio`) all talk to a
Tabby server through one Node.js client, `tabby-agent` (npm). It calls four routes (clients/tabby-openapi in
TabbyML/tabby; the agent 1.5.0 on npm):

    GET  /v1/health              is it up, which model, which version (the agent falls back to POST on 405)
    GET  /v1beta/server_setting  {"disable_client_side_telemetry": bool}, asked when the version is >= 0.9.0
    POST /v1/completions         {language, segments: {prefix, suffix, filepath, git_url, declarations,
                                  relevant_snippets_from_changed_files, clipboard}, user, ...}
                                 -> {id, choices: [{index, text}]}
    POST /v1/events              {type: view | select | dismiss, completion_id, choice_index, ...}

all with `Authorization: Bearer TOKEN`, the header this server's tokens use (a 401 makes the agent ask its
editor for a token). The completion request maps onto ours:

    Tabby                                     POST /autocomplete (server.py)
    segments.prefix                           prompt (the agent sends the 20 lines above the cursor)
    segments.suffix                           suffix (the 20 lines below)
    segments.declarations [{filepath, body}]  input_extra chunks {filename, text}, in this order:
    segments.relevant_snippets_from_changed_files [{filepath, body, score}]  (best first, as sent)
    segments.git_url                          model, where the server has one by the repository's name
    language                                  "python" (or none): answered; any other: no choices, no worker

A team's server with a model per project (`--models-dir`, serving/models.py) answers with the model named as
the repository: `segments.git_url` (the agent sends the `origin` remote's URL) ending in `billing.git` asks
`billing` where DIR/billing.pt exists (the nightly recipe in docs/server.md names each model so), else the
default model. The agent has no setting for a model, so the repository names it.

`clipboard`, `user`, `temperature`, `seed` and `debug_options` are ignored: the engine's beam search is its own,
and the tokens file names the user. A best completion of blanks only is continued as for /infill
(server.py: the agent's post-processing drops blank choices).

Privacy. The agent sends anonymous usage events to app.tabbyml.com unless told not to; a private server tells
it not to: `/v1beta/server_setting` always answers `disable_client_side_telemetry: true`, and `/v1/health`
names the Tabby API version whose routes are served here (`TABBY_API_VERSION`), so the agent asks for the
setting (it skips the question for versions before 0.9.0). The agent stores the setting per endpoint and
applies it at once. (On its very first start it has sent two events before it asks: docs/server.md tells users to
turn them off in its config.toml too.)

The `view`/`select`/`dismiss` events the agent posts are counted by type and by the model that gave the answer
they name (`autocomplete_client_events_total{type,model}`, serving/metrics.py): with `select` over `view` a team's
server sees how often each model's suggestions are taken.
"""
from __future__ import annotations

import functools
import os
import platform
import re
import uuid
from dataclasses import dataclass

# The version of Tabby's server API that /v1/health names: its four routes above (clients/tabby-openapi
# 0.17.0). The agent compares it with 0.9.0 before it asks for the server's settings.
TABBY_API_VERSION = "0.17.0"
PYTHON_LANGUAGES = ("python", "")           # VS Code's language id; the agent always sends one
EVENT_TYPES = ("view", "select", "dismiss")  # what the agent posts; anything else is counted as "other"
MAX_ID_CHARS = 256


class BadTabbyRequest(ValueError):
    """A field of the wrong type or shape: the server answers 400 with this message."""


def _optional_string(obj: dict, name: str, where: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadTabbyRequest(f'"{where}{name}" must be a string')
    return value


def _snippets(segments: dict, name: str) -> list[dict]:
    """`segments[name]` ([{filepath, body, ...}]) as input_extra chunks ({filename, text})."""
    value = segments.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadTabbyRequest(f'"segments.{name}" must be a list of {{"filepath": str, "body": str}} objects')
    chunks = []
    for i, snippet in enumerate(value):
        if not isinstance(snippet, dict):
            raise BadTabbyRequest(f'"segments.{name}"[{i}] must be an object {{"filepath": str, "body": str}}')
        where = f"segments.{name}[{i}]."
        body = snippet.get("body")
        if not isinstance(body, str):
            raise BadTabbyRequest(f'"{where}body" is required and must be a string')
        chunks.append({"filename": _optional_string(snippet, "filepath", where), "text": body})
    return chunks


@dataclass
class TabbyRequest:
    fields: dict        # the /autocomplete body that asks the engine the same
    python: bool        # False for another language: nothing to ask
    repository: str     # the last part of `segments.git_url` ("billing" for ...acme/billing.git), or ""


def repository_name(git_url: str) -> str:
    """The repository's name in its remote URL: `https://host/acme/billing.git`, `git@host:acme/billing.git`,
    `file:///srv/repos/billing/` -> "billing"."""
    name = re.split(r"[/:\\]", git_url.strip().rstrip("/\\"))[-1]
    return name[:-len(".git")] if name.endswith(".git") else name


def translate_request(body: dict) -> TabbyRequest:
    """A /v1/completions body -> what to ask the engine. Raises BadTabbyRequest for a field of the wrong shape;
    the /autocomplete body's own checks (sizes, `input_extra`'s) are server.completion_args's."""
    language = _optional_string(body, "language", "")
    segments = body.get("segments")
    if not isinstance(segments, dict):
        raise BadTabbyRequest('"segments" is required and must be an object {"prefix": str, "suffix": str, ...}')
    prefix = segments.get("prefix")
    if not isinstance(prefix, str):
        raise BadTabbyRequest('"segments.prefix" is required and must be a string')
    suffix = _optional_string(segments, "suffix", "segments.")
    extra = _snippets(segments, "declarations") + _snippets(segments, "relevant_snippets_from_changed_files")
    request = {"prompt": prefix, "suffix": suffix, "input_extra": extra}
    return TabbyRequest(request, language.lower() in PYTHON_LANGUAGES,
                        repository_name(_optional_string(segments, "git_url", "segments.")))


def completion_id() -> str:
    return f"cmpl-{uuid.uuid4()}"


def answer(completions: list[str], cid: str) -> dict:
    """The engine's completions (best first) as Tabby's answer: the distinct non-blank ones (the agent drops
    blank choices and would show a repeat twice)."""
    choices, seen = [], set()
    for text in completions:
        if text.strip() and text not in seen:
            seen.add(text)
            choices.append({"index": len(choices), "text": text})
    return {"id": cid, "choices": choices}


@functools.cache
def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows; read once, not at each
    /v1/health."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def health(model: str, server_version: str, git_sha: str = "") -> dict:
    """Tabby's HealthState: the agent reads `model` and `device` (both must be there) and `version`."""
    return {"model": model, "chat_model": None, "device": "cpu", "arch": platform.machine(),
            "cpu_info": cpu_name(), "cpu_count": os.cpu_count() or 1, "cuda_devices": [],
            "version": {"build_date": "", "build_timestamp": "", "git_sha": git_sha,
                        "git_describe": f"v{TABBY_API_VERSION} (python-autocomplete {server_version})"},
            "webserver": False}


def server_setting() -> dict:
    """Tabby's ServerSetting: nothing leaves the user's machine, the agent's telemetry included."""
    return {"disable_client_side_telemetry": True}


def read_event(body: dict) -> tuple[str, str]:
    """(the counted type, the answer's id) of a /v1/events body (a LogEventRequest); BadTabbyRequest when it is
    not one."""
    kind = body.get("type")
    if not isinstance(kind, str):
        raise BadTabbyRequest('"type" is required and must be a string ("view", "select" or "dismiss")')
    cid = body.get("completion_id")
    if not isinstance(cid, str) or len(cid) > MAX_ID_CHARS:
        raise BadTabbyRequest(f'"completion_id" is required and must be a string of at most {MAX_ID_CHARS} '
                              "characters")
    index = body.get("choice_index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise BadTabbyRequest('"choice_index" is required and must be an integer >= 0')
    return (kind if kind in EVENT_TYPES else "other"), cid
