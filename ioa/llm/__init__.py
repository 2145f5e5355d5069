"""LLM teachers: chat backends (OpenAI-compatible HTTP, local Hugging Face), the response cache, usage
accounting and budget, versioned prompt templates, and LLM-driven domains and teachers."""
