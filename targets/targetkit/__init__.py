"""The target kit: what every reference target's services share, so a
target's own files hold only its pattern. Standard library only.

- ``serving``: JSON over HTTP in one socket write, the server with a real
  backlog, and the serve loop that stops on SIGTERM/SIGINT.
- ``envconfig``: readers of the environment contract that name the variable.
- ``program``: a main that turns a bad environment into exit status 2.

The local runtime puts its folder on PYTHONPATH and the image build copies it
to /opt/kit in every target image, so a service imports it as ``targetkit``.
"""
