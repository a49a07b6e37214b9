"""Read-only queries of the stats projection (lifetime stats, leaderboards) and the surfaces that combine it with the
ledger (economy summary, export); privacy through activity.privacy."""
