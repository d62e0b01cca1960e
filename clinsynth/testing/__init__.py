"""Test doubles shared by tests, benches and users: a local OpenAI-compatible stub server
(``python -m clinsynth.testing.stub_server``) and the scripted responders that answer like
each recipe's model, so every way of use can be tried without an endpoint."""
