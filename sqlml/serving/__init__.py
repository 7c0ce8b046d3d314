"""Serving: fast batch inference, the prediction cache, the online endpoint."""
