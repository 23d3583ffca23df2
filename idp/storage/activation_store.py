"""SQL storage of activation, recovery and delivery (codes, transactions, outbox)."""
