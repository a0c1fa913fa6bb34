//! LLM links: OpenRouter and LiteLLM proxy clients with per-role failover, circuit breakers, SSE streaming and usage metrics.
