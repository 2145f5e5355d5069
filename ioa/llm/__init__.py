"""The chat transport LLM teachers and LLM-described domains are built on: backends (OpenAI-compatible
HTTP, local Hugging Face), the cached and metered client (response cache, usage ledger and budget),
structured output with bounded re-asking, and the versioned prompt templates every call is rendered
from. The records it passes are `ioa.chat`'s; the domains are in `ioa.domains`, the teacher in
`ioa.teachers`."""
