"""Word n-gram language models for graph decoding."""
