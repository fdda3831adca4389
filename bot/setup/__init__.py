"""First run sets itself up: the start page, the GitHub App manifest flow and the Slack
app manifest.

`stored` keeps a registered App's credentials (a 0600 file beside the database) and lays
them under the environment's settings; `pending` is the GitHub forge of a server whose App
does not exist yet, which becomes the real one once it does (no restart); `manifest`
builds the manifests; `flow` serves `/` and the `/setup/...` routes.
"""
