"""Read-only queries of the ledger, one module per surface; every one filters through activity.privacy."""
