"""Apply: write journaled transactions to the target, in order, exactly once."""
