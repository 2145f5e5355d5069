"""Structured output from a chat model: JSON extraction, schema validation, and bounded re-asking.

Models wrap JSON in prose or ```json fences; `extract_json` finds the first complete JSON value
anyway. When the output still does not parse or validate, `ask_parsed_many` re-asks in the same
conversation with the error appended, a bounded number of times, then raises `TeacherOutputError`
naming the prompt, the last error and the start of the output. `ask_json` / `ask_json_many` are the
JSON case; the judge's `[[rating]]` verdicts use the same loop with their own parser.

Failed calls (a result with `error` set after the backend's own retries) are never re-asked here:
`complete_or_raise` turns them into one `TeacherCallError` listing every failed prompt.
"""
from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Callable, Sequence, TypeVar

import jsonschema

from ioa.chat import ChatBackend, ChatRequest, ChatResult, TeacherCallError

T = TypeVar("T")
FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
JSON_REASK = "Your previous output was invalid: {error}. Reply with only valid JSON matching the schema."
SNIPPET = 200


class InvalidOutput(ValueError):
    """One output that did not parse or validate; the message says why, for the re-ask."""


class TeacherOutputError(ValueError):
    """The teacher's output stayed invalid after every re-ask."""


def extract_json(text: str) -> Any:
    """The first JSON object or array in `text`: inside a ```json fence if there is one, else bare."""
    for block in FENCE.findall(text):
        try:
            return json.loads(block.strip())
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        return value
    raise InvalidOutput("no JSON object or array found in the output")


def schema_error(value: Any, schema: dict) -> str | None:
    """The most relevant validation error as `at <path>: <message>`, or None when valid."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    message = error.message
    if len(message) > 300:  # jsonschema quotes the whole offending value; name the rule instead
        message = (f"fails {error.validator} {json.dumps(error.validator_value)[:100]} "
                   f"(value: {snippet(json.dumps(error.instance))})")
    return f"at {path}: {message}"


def json_parser(schema: dict, check: Callable[[Any], str | None] | None = None) -> Callable[[str], Any]:
    """A parser for `ask_parsed_many`: extract, validate against `schema`, then `check` (semantic rules)."""

    def parse(text: str) -> Any:
        value = extract_json(text)
        error = schema_error(value, schema) or (check(value) if check else None)
        if error:
            raise InvalidOutput(error)
        return value

    return parse


def complete_or_raise(client: ChatBackend, requests: Sequence[ChatRequest]) -> list[ChatResult]:
    """The backend's results, or one TeacherCallError listing every call that failed."""
    results = client.complete(list(requests)) if requests else []
    if len(results) != len(requests):
        raise TeacherCallError(f"backend {client.model!r} returned {len(results)} results for {len(requests)} requests")
    failed = [(q, r) for q, r in zip(requests, results) if r.error]
    if failed:
        shown = "; ".join(f"prompt {q.prompt!r} v{q.prompt_version}: {r.error}" for q, r in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        raise TeacherCallError(f"{len(failed)} of {len(requests)} teacher call(s) failed: {shown}{more}")
    return results


def reasked(request: ChatRequest, output: str, error: str, reask: str) -> ChatRequest:
    """The same conversation continued: the invalid output, then the error and what to do instead."""
    messages = request.messages + (("assistant", output), ("user", reask.format(error=error)))
    return dataclasses.replace(request, messages=messages)


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[:SNIPPET] + "..."


def ask_parsed_many(
    client: ChatBackend, requests: Sequence[ChatRequest], parse: Callable[[str], T], max_retries: int,
    reask: str = JSON_REASK,
) -> list[T]:
    """Parsed outputs, one per request; the invalid ones are re-asked together, at most `max_retries` times."""
    values: list[Any] = [None] * len(requests)
    pending = {i: r for i, r in enumerate(requests)}
    last: dict[int, tuple[str, str]] = {}  # index -> (error, output)
    for _ in range(max_retries + 1):
        if not pending:
            break
        order = sorted(pending)
        results = complete_or_raise(client, [pending[i] for i in order])
        retry = {}
        for i, result in zip(order, results):
            try:
                values[i] = parse(result.text)
            except InvalidOutput as e:
                last[i] = (str(e), result.text)
                retry[i] = reasked(pending[i], result.text, str(e), reask)
        pending = retry
    if pending:
        i = min(pending)
        error, output = last[i]
        q = requests[i]
        many = f"{len(pending)} of {len(requests)} outputs; first: " if len(requests) > 1 else ""
        raise TeacherOutputError(
            f"teacher output for prompt {q.prompt!r} v{q.prompt_version} still invalid after {max_retries} "
            f"re-ask(s) ({many}{error}); output was: {snippet(output)!r}")
    return values


def ask_parsed(client: ChatBackend, request: ChatRequest, parse: Callable[[str], T], max_retries: int,
               reask: str = JSON_REASK) -> T:
    return ask_parsed_many(client, [request], parse, max_retries, reask)[0]


def ask_json_many(client: ChatBackend, requests: Sequence[ChatRequest], schema: dict, max_retries: int,
                  check: Callable[[Any], str | None] | None = None) -> list[Any]:
    """Validated JSON values, one per request (see `ask_parsed_many`)."""
    return ask_parsed_many(client, requests, json_parser(schema, check), max_retries)


def ask_json(client: ChatBackend, request: ChatRequest, schema: dict, max_retries: int,
             check: Callable[[Any], str | None] | None = None) -> Any:
    """One validated JSON value; re-asks with the validation error, then raises TeacherOutputError."""
    return ask_json_many(client, [request], schema, max_retries, check)[0]
