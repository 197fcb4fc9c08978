"""The target kit: what every reference target's services share (JSON over
HTTP, the environment contract), so a target's own files hold only its
pattern. Standard library only.

The local runtime puts its folder on PYTHONPATH and the image build copies it
to /opt/kit in every target image, so a service imports it as ``targetkit``.
"""
