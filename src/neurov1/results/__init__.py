"""The results ledger and the paper's tables built from it."""
