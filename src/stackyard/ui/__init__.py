"""The web console at ``/ui``: server-rendered pages over the gateway's own APIs."""
