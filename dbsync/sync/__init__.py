"""One table sync: plan, stage with dlt, commit, read-ahead, and the runtime it runs in."""
