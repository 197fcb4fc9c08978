"""What the harness knows of one pattern beyond its checks (harness/checks/):
readers and probes of the pattern's real components, and the load it needs.

- discovery: who is in, as etcd and Envoy see it (membership probes)
- gateway: good and bad bearer tokens for an authenticating entry point
"""
