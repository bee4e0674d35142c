"""Pledge bundles and certificates: what a bank downloads, and the verify page and API that check one."""
