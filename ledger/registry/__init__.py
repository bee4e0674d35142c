"""The rights registry: parties, assets, confirmations, valuations, pledges, transfers and retirements (projections
of the log), idempotent requests, their API and pages."""
