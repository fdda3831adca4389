"""Slack, the adapter: the only place that knows Block Kit, slack-sdk and Slack's payloads.

`signing` checks that a request came from Slack and MACs our button values; `interactions`
turns a click or a submitted modal into a typed event; `blocks` builds the messages and
modals; `client` posts and updates them and resolves user groups. Deciding what a click
means for a request is the approval workflow's business (`bot.approvals`), not this one's.
"""
