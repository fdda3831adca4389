"""Approvals: requests for people to approve a change or a deploy, their decisions in Slack,
deploy gates (freeze windows, break-glass) and the tamper-evident audit log behind them."""
