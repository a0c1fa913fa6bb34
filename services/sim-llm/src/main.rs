//! Runs the OpenAI- and OpenRouter-compatible LLM simulator from gekko-sim until Ctrl-C.

fn main() {}
