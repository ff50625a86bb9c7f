"""Background work of the relay: RQ jobs that deliver leads to careCycle and fetch Meta leads."""
