"""Test support for tf_magics: servers, kernels and texts the test suite and the benchmarks share.

Not part of the distribution (the wheel ships ``tf_magics`` only); import it from a checkout, with
the repository root on ``sys.path`` (pytest and ``python -m`` from the root both do that).

==================  ===============================================================================
module              what it gives
==================  ===============================================================================
``fake_openai``     a scripted OpenAI-compatible server on 127.0.0.1 that records every request
``markdown_text``   long, realistic Markdown replies cut into tokens, the same for the same seed
``kernels``         a real Jupyter kernel driven from a test: run cells, collect IOPub messages
``model_server``    the real llama-cpp-python server with SmolLM2, shared by a test session
==================  ===============================================================================

It depends on ``tf_magics`` and third-party packages only: never on ``tests`` or ``benchmarks``.
"""
