"""Webhooks: subscriptions, signed deliveries of registry entries with backoff, and their API."""
